"""``legato.Runtime``: wires a store, a serializer, a clock and a worker together."""

from __future__ import annotations

import asyncio
import math
import os
import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from types import TracebackType
from typing import Any, Literal, Self, TypeVar, TypeVarTuple, final, overload

from ..._clock import Clock, SystemClock
from ..._duration import Duration, to_seconds
from ..._errors import ScheduleNotFound, WorkflowConflict, WorkflowNotFound
from ..._serde import JsonSerializer, Serializer
from ...store import (
    NewWorkflow,
    StepRecord,
    Store,
    WorkflowQuery,
    WorkflowRecord,
    open_store,
)
from ..engine import (
    Engine,
    asyncio_guard,
    cancel_children,
    observe,
    task_factory,
    unrecorded,
)
from ..worker import ANNOUNCE_EVERY, NewsRelay, WakeBus, Worker, new_owner_id, read_store_clock
from ..workflow import Queue, Workflow
from ._bound_queue import BoundQueue, check_key, declare
from ._debounce import Debounced, DebounceSpec
from ._fork import fork_point
from ._handle import Status, WorkerInfo, WorkflowHandle, WorkflowInfo, make_info
from ._ids import check_id
from ._inspection import HistoryRecord, decode_value, history, to_datetime
from ._schedules import CatchUp, Overlap, ScheduleInfo, define, set_paused
from ._schedules import info as schedule_info
from ._updates import send_update
from ._waiter import Waiter

__all__ = ["Runtime", "run"]

R = TypeVar("R")
Ts = TypeVarTuple("Ts")

_PAGE = 1000  # children are read in pages of this many
_MICROSECOND = 1e-6

_ALIVE = 3 * ANNOUNCE_EVERY  # a worker not heard from for longer is taken for gone


@final
class Runtime:
    """A connection to a store, and (unless ``worker=False``) a worker that runs workflows.

    Example::

        async with legato.Runtime("legato.db") as rt:
            handle = await rt.start(research, "durable execution", id="research-1")
            print(await handle.result())

    Args:
        store: a file path (``str`` or ``Path``: SQLite),
            ``"sqlite:///path.db?synchronous=full"``, ``"postgresql://..."``, or a Store.
        clock: durable time; ``legato.VirtualClock()`` makes sleeps jump in tests.
        serializer: how values are stored (default JSON; ``PickleSerializer()`` on request).
        concurrency: how many workflows this worker runs at once.
        worker: ``False`` for a client that only starts and inspects workflows.
        lease: seconds a worker's claim on a workflow lasts without a heartbeat;
            a crashed worker's workflows are resumed elsewhere after this long.
            Leases are renewed from a thread, on the store's clock.
        stall_limit: seconds the event loop may be blocked (by code that doesn't
            await) before this worker stops renewing its leases and other
            workers take its workflows over; it logs a warning naming the step
            once a stall lasts longer than a lease.
        suspend_after: a workflow whose only activity is a wait (sleep, signal,
            child) longer than this is unloaded from memory until it is due.
        queues: the :class:`~legato.Queue` s whose workflows this worker runs,
            within their limits (see :meth:`queue`).
    """

    def __init__(
        self,
        store: str | os.PathLike[str] | Store = "legato.db",
        *,
        clock: Clock | None = None,
        serializer: Serializer | None = None,
        concurrency: int = 1000,
        worker: bool = True,
        lease: float = 1.5,
        stall_limit: float = 60.0,
        suspend_after: Duration = 5.0,
        queues: Iterable[Queue] = (),
    ) -> None:
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency must be a whole number of at least 1, not "
                             f"{concurrency!r}")
        for option, seconds in (("lease", lease), ("stall_limit", stall_limit)):
            if not (isinstance(seconds, int | float) and math.isfinite(seconds) and seconds > 0):
                raise ValueError(
                    f"{option} must be a positive, finite number of seconds, not {seconds!r}")
        self.store = open_store(store)
        self.wall = SystemClock()  # real time, set to the store's clock on open
        self.clock = clock or self.wall
        self.serializer = serializer or JsonSerializer()
        self.engine = Engine(unrecorded(self.store), self.serializer, self.clock, new_owner_id(),
                             suspend_after=to_seconds(suspend_after))
        bus = WakeBus()  # every in-process waiter, woken by news from here or elsewhere
        self._worker = Worker(self.engine, self.wall, bus, concurrency=concurrency, lease=lease,
                              stall_limit=stall_limit) if worker else None
        # The store's news wakes the worker and result waiters; polling is a slow safety net
        self._news = NewsRelay(self.store.wait_for_news, bus, self._worker)
        self._waiter = Waiter(self.store, self.serializer, bus, self._worker, self.workers)
        self._queues: dict[str, Queue] = {}
        for q in queues:
            self._declare(q)
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"Runtime({self.store.url!r})"

    @property
    def worker_id(self) -> str:
        """This runtime's id as a worker: the owner of the workflows it runs.

        >>> print(f"worker {rt.worker_id} started")
        """
        return self.engine.owner

    async def __aenter__(self) -> Self:
        await self.store.open()
        for _ in range(5):  # a reading with a slow round trip is not trusted
            if await read_store_clock(self.store, self.wall):
                break
        self._loop = asyncio.get_running_loop()
        task_factory.install(self._loop)
        asyncio_guard.install()
        self._news.start()
        if self._worker is not None:
            await self._worker.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self._news.stop()
            if self._worker is not None:
                await self._worker.stop()
        finally:
            await self.store.close()
            if self._loop is not None:
                task_factory.uninstall(self._loop)
                asyncio_guard.uninstall()

    # -- starting ----------------------------------------------------------------

    def _declare(self, queue: Queue | str) -> Queue:
        q = declare(self._queues, queue, strict=self._worker is not None)
        if self._worker is not None:
            self._worker.queues[q.name] = q.limits
        return q

    def queue(self, queue: Queue | str) -> BoundQueue:
        """A queue bound to this runtime, to enqueue on: ``await rt.queue(q).enqueue(...)``.

        Passing a :class:`~legato.Queue` declares it here (this worker then
        runs its workflows); a name must have been declared, unless this is a
        client (``worker=False``), which may enqueue on queues run elsewhere.

        >>> emails = rt.queue(legato.Queue("emails", concurrency=3))
        >>> handle = await emails.enqueue(send_email, "ana")

        Raises:
            ValueError: the name is not declared here, or is declared with other limits.
        """
        return BoundQueue(self, self._declare(queue))

    async def start(
        self, fn: Callable[[*Ts], Awaitable[R]], /, *args: *Ts, id: str | None = None,
        timeout: Duration | None = None, queue: Queue | str | None = None, priority: int = 0,
        delay: Duration | None = None, dedup_key: str | None = None, key: str | None = None,
        debounce: DebounceSpec | None = None, **kwargs: Any,
    ) -> WorkflowHandle[R]:
        """Store a new workflow run and return its handle; it runs on a worker.

        For a type checker, the positional arguments are checked against the
        workflow's parameters and the handle is typed by its result;
        arguments passed by keyword are not checked (they share ``**kwargs``
        with the options below; the runtime still checks them against the
        signature before storing anything).

        Pass ``id=`` to name the run: the id is the idempotency key, so starting
        an id that exists returns the existing run's handle and runs nothing.
        ``timeout=`` sets a deadline (durable time) after which the run is
        cancelled; it overrides ``@workflow(timeout=...)``. ``queue=`` puts it
        on a :class:`~legato.Queue` (see :meth:`BoundQueue.enqueue` for
        ``priority``, ``delay`` and ``dedup_key``); ``delay`` and ``priority``
        also work without a queue. ``key=`` is its key (a tenant, a customer) on a
        queue with ``key_concurrency`` or ``key_rate``. Until it starts, it is
        ``pending``.

        ``debounce=(key, window)`` (or ``(key, window, max_wait)``) folds a
        burst of starts into one run: while a run of this workflow with that
        key is still pending, a start gives it its arguments (the last
        start's win) and moves its start to ``window`` after this one, at
        most ``max_wait`` after the first. The handle is the pending run's
        (its id is the first start's; a later start's ``id=`` is unused).

        >>> handle = await rt.start(onboard, "ana", id="onboard-ana")
        >>> await rt.start(reindex, doc, debounce=(f"doc-{doc.id}", "5s"))

        Raises:
            WorkflowConflict: the id belongs to a different workflow.
            DuplicateWorkflow: ``dedup_key`` is held by an unfinished workflow
                of the queue.
            ValueError: a bad ``debounce=`` (or with ``delay=``/``dedup_key=``), or
                ``key=`` without a queue that has ``key_concurrency`` or ``key_rate``.
            SerializationError: an argument can't be stored (named in the message).
            TypeError: ``fn`` is not a ``@legato.workflow``, or the arguments
                don't fit its signature.
        """
        workflow_id = id
        wf = _as_workflow(fn)
        debounced = None if debounce is None else Debounced.parse(
            debounce, delay=delay, dedup_key=dedup_key)
        queue = wf.queue if queue is None else queue
        if workflow_id is None:
            workflow_id = uuid.uuid4().hex
        else:
            check_id(workflow_id)
        declared = None if queue is None else self._declare(queue)
        queue_name = None if declared is None else declared.name
        key = check_key(key, declared)
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise TypeError(f"priority must be an int (lower starts first), not {priority!r}")
        if dedup_key is not None and queue_name is None:
            raise ValueError("dedup_key= needs a queue= (keys are unique within a queue)")
        # the caller's current span is the parent of the workflow's whole trace
        observer = observe.OBSERVER
        observed = None if observer is None else observer.creating(workflow_id, wf.name, None)
        data = wf.encode_input(self.serializer, args, kwargs,
                               trace=None if observed is None else observed.trace)
        seconds = wf.timeout if timeout is None else to_seconds(timeout)
        deadline = None if seconds is None else self.clock.now() + seconds
        not_before = None if delay is None else self.clock.now() + to_seconds(delay)
        new = NewWorkflow(
            workflow_id, wf.name, data, None, 0.0, deadline=deadline, queue=queue_name,
            priority=priority, not_before=not_before, dedup_key=dedup_key, key=key)
        if debounced is not None:
            existing = await debounced.start(self.store, new, self.clock.now())
            if existing is not None:  # folded into the key's pending run (or the id's run)
                workflow_id = existing.id
            if self._worker is not None:
                self._worker.poke()
        elif self._worker is None:
            existing = await self.store.create(new)
        else:  # a queued or delayed run waits for its claim; the rest may start here at once
            existing = await self._worker.admit(
                wf, new, here=queue_name is None and not_before is None)
        if observed is not None:
            observed.end(existing is None)
        if existing is not None and existing.name != wf.name:
            raise WorkflowConflict(workflow_id, existing.name, wf.name)
        return WorkflowHandle(self, workflow_id)

    async def run(
        self, fn: Callable[[*Ts], Awaitable[R]], /, *args: *Ts, id: str | None = None,
        **kwargs: Any,
    ) -> R:
        """Start a workflow and wait for its result (``start`` then ``result``).

        >>> summary = await rt.run(research, "durable execution", id="research-1")
        """
        handle = await self.start(fn, *args, id=id, **kwargs)
        return await handle.result()

    @overload
    def handle(self, workflow_id: str, /) -> WorkflowHandle[Any]: ...
    @overload
    def handle(self, workflow_id: str, workflow: Callable[..., Awaitable[R]], /
               ) -> WorkflowHandle[R]: ...

    def handle(self, workflow_id: str, workflow: Callable[..., Awaitable[Any]] | None = None, /
               ) -> WorkflowHandle[Any]:
        """A handle to an existing workflow, without I/O (the id is checked on use).

        Pass the workflow too and the handle is typed by its result (nothing
        is checked at run time: the id alone names the run).

        >>> handle = rt.handle("report-q3", report)   # WorkflowHandle[Report]
        >>> summary = await handle.result()
        """
        return WorkflowHandle(self, workflow_id)

    # -- talking to workflows -------------------------------------------------------

    async def signal(self, workflow_id: str, name: str, payload: Any = None) -> None:
        """Send the signal ``name`` to a workflow; it is stored until a wait consumes it.

        A workflow waiting for it wakes at once (in this process) or when the
        store's news reaches the process running it (NOTIFY on PostgreSQL,
        the news table on SQLite: milliseconds).

        >>> await rt.signal("expense-42", "approval", {"approved": True, "by": "ana"})

        Raises:
            WorkflowNotFound: no workflow has this id.
            LegatoError: the workflow has finished (nothing is stored).
            SerializationError: the payload can't be stored.
        """
        data = self.serializer.dumps(payload, label=f"the payload of signal {name!r}")
        await self.store.send_signal(workflow_id, name, data)
        if self._worker is not None:
            self._worker.notify(workflow_id)

    async def update(self, workflow_id: str, name: str, payload: Any = None, *,
                     update_id: str | None = None, timeout: float | None = None) -> Any:
        """Send update ``name`` to a workflow and return its reply, once it is recorded.

        The workflow takes it with ``legato.wait_for_update(name)`` and answers
        with ``await update.reply(value)``; this returns ``value``. A durable
        request with a durable answer, exactly once: the request is stored
        once per ``update_id`` and the reply is kept, so after a crash of the
        worker, or of this caller between the reply and its read, calling
        again with the same ``update_id`` returns the same reply without the
        workflow handling the request twice.

        >>> total = await rt.update("cart-7", "add", {"sku": "tea"}, update_id="req-1", timeout=10)

        Raises:
            Exception: the error the workflow refused the update with (``update.reject``).
            WorkflowTimeout: no reply within ``timeout`` s (the request stays stored).
            WorkflowNotFound: no workflow has this id.
            LegatoError: the workflow finished without replying (or before it was sent).
        """
        notify = self._worker.notify if self._worker is not None else None
        return await send_update(self.store, self.serializer, self._waiter.bus, notify,
                                 workflow_id, name, payload, update_id, timeout)

    async def cancel(self, workflow_id: str) -> None:
        """Cancel a workflow and its children.

        A running or waiting workflow sees ``asyncio.CancelledError`` at its
        current await (so ``finally`` blocks and sagas run), then ends
        ``cancelled``; a pending one is cancelled at once. Cancelling a finished
        workflow does nothing.

        >>> await rt.cancel("expense-42")

        Raises:
            WorkflowNotFound: no workflow has this id.
        """
        record = await self.store.request_cancel(workflow_id)
        if self._worker is not None and not self._worker.cancel_local(workflow_id):
            self._worker.notify(workflow_id)
        if record.status == "cancelled":
            await cancel_children(self.store, workflow_id)

    async def resume(self, workflow_id: str) -> WorkflowHandle[Any]:
        """Run a failed or cancelled workflow again from its last checkpoint.

        Its failed steps are forgotten and run again; everything that succeeded
        replays. Use it after fixing the cause (a bug, an outage, a
        ``NonDeterminismError`` after a code change).

        >>> await rt.resume("expense-42")

        Raises:
            WorkflowNotFound: no workflow has this id.
            LegatoError: the workflow is not failed or cancelled.
        """
        await self.store.resume(workflow_id)
        if self._worker is not None:
            self._worker.poke()
        return WorkflowHandle(self, workflow_id)

    async def fork(self, workflow_id: str, at: str | int, new_id: str | None = None
                   ) -> WorkflowHandle[Any]:
        """Start a copy of a workflow that reuses its recorded outcomes before ``at``.

        The new workflow has the same name and inputs; every record of the
        original at a top-level position before ``at`` replays (its steps
        don't run again), and the rest runs with the code deployed now. The
        original is left as it is. For re-running the tail of a workflow
        after fixing a bug, or recovering from a bad deploy (DBOS's
        ``fork_workflow``, LangGraph's time travel).

        >>> handle = await rt.fork("order-42", at="charge")        # from the step 'charge'
        >>> handle = await rt.fork("order-42", at=4, new_id="order-42-retry")

        Args:
            at: a top-level position (``4`` or ``"4"``: records at 1..3 are reused), or
                a step's name (its first call at the top level).
            new_id: the new workflow's id (default: a fresh one). An id that
                exists already returns its handle, as ``start`` does.

        Raises:
            WorkflowNotFound: no workflow has this id.
            ValueError: ``at`` names no top-level position or step of it.
        """
        source = await self.store.get(workflow_id)
        if source is None:
            raise WorkflowNotFound(workflow_id)
        before = fork_point(await self.store.history(workflow_id), at)
        if new_id is None:
            new_id = uuid.uuid4().hex
        check_id(new_id)
        existing = await self.store.create(NewWorkflow(
            new_id, source.name, source.input, None, 0.0, parent_id=source.parent_id,
            copy_from=(workflow_id, before)))
        if existing is not None and existing.name != source.name:
            raise WorkflowConflict(new_id, existing.name, source.name)
        if self._worker is not None:
            self._worker.poke()
        return WorkflowHandle(self, new_id)

    # -- schedules -----------------------------------------------------------------

    async def schedule(
        self, workflow: Callable[..., Awaitable[Any]] | str, cron: str, *,
        name: str | None = None, args: Iterable[Any] = (), kwargs: dict[str, Any] | None = None,
        timezone: str = "UTC", overlap: Overlap = "skip", catch_up: CatchUp = "latest",
    ) -> ScheduleInfo:
        """Start ``workflow`` on every tick of ``cron``, on whichever worker comes first.

        Each tick starts exactly one run, however many workers share the
        store, with the id ``f"{name}@{tick}"`` (tick in ISO-8601 UTC, e.g.
        ``"report@2026-12-01T09:00:00Z"``); ``legato.scheduled_time()``
        inside the run gives the tick. Defining a name again redefines it
        (a changed cron or time zone starts from the next tick after now).

        >>> await rt.schedule(report, "0 9 * * mon-fri", args=["sales"],
        ...                   timezone="Europe/Riga", overlap="buffer_one")

        Args:
            workflow: a ``@legato.workflow``, or the name of one (for a client
                without the code).
            cron: five fields, ``minute hour day month weekday`` (six: seconds first).
            name: the schedule's name (default: the workflow's name).
            args, kwargs: the arguments of every run.
            timezone: an IANA zone the cron is read in; DST as cron does it (see README).
            overlap: when a tick comes while the previous run is unfinished:
                ``"skip"`` the tick, ``"buffer_one"`` (start it when the
                previous run ends; at most one waits, further ticks are
                skipped), or ``"allow"`` both to run.
            catch_up: for ticks missed while no worker ran: ``"latest"`` starts
                the most recent one, ``"all"`` every one (in order, subject to
                ``overlap``), ``"none"`` none (a tick over a minute late is missed).

        Raises:
            ValueError: a bad cron, time zone, overlap, catch_up or name (named).
            TypeError: ``workflow`` is not a workflow, or ``args`` don't fit it.
        """
        scheduled = await define(
            self.store, self.clock, self.serializer, workflow, cron, name=name, args=args,
            kwargs=kwargs, timezone=timezone, overlap=overlap, catch_up=catch_up)
        self._poke_scheduler()
        return scheduled

    async def schedules(self) -> list[ScheduleInfo]:
        """Every schedule in the store, by name.

        >>> for s in await rt.schedules():
        ...     print(s.name, s.cron, s.next_tick, "paused" if s.paused else "")
        """
        return [schedule_info(r, self.serializer) for r in await self.store.schedules()]

    async def pause_schedule(self, name: str) -> None:
        """Start no more runs of schedule ``name`` until it is resumed (runs going on go on).

        >>> await rt.pause_schedule("report")

        Raises:
            ScheduleNotFound: no schedule has this name.
        """
        await set_paused(self.store, self.clock, name, True)

    async def resume_schedule(self, name: str) -> None:
        """Go on with a paused schedule from its next tick after now (paused ticks are not run).

        >>> await rt.resume_schedule("report")

        Raises:
            ScheduleNotFound: no schedule has this name.
        """
        await set_paused(self.store, self.clock, name, False)
        self._poke_scheduler()

    async def delete_schedule(self, name: str) -> None:
        """Forget schedule ``name``; the runs it started stay.

        A ``@workflow(schedule=...)`` is stored again when a worker with its
        code starts: remove the option too.

        >>> await rt.delete_schedule("report")

        Raises:
            ScheduleNotFound: no schedule has this name.
        """
        if not await self.store.delete_schedule(name):
            raise ScheduleNotFound(name)

    def _poke_scheduler(self) -> None:
        if self._worker is not None:
            self._worker.scheduler.poke()

    # -- inspecting ----------------------------------------------------------------

    async def get(self, workflow_id: str) -> WorkflowInfo:
        """Everything about one workflow: status, inputs, output, error and its
        traceback, timings, run id, parent and children, published events, and
        the step timeline (``info.steps``).

        >>> info = await rt.get("order-42")
        >>> [(s.position, s.name, s.attempts, s.summary) for s in info.steps]

        Raises:
            WorkflowNotFound: no workflow has this id.
        """
        await asyncio.sleep(0)  # a SQLite read doesn't suspend: let a polling loop yield
        record = await self.store.get(workflow_id)
        if record is None:
            raise WorkflowNotFound(workflow_id)
        events = {e.key: decode_value(self.serializer, e.value)
                  for e in await self.store.events(workflow_id)}
        return make_info(record, self.serializer, await self.store.history(workflow_id),
                         children=await self._children(workflow_id), events=events)

    async def history(self, workflow_id: str, run_id: str | None = None
                      ) -> list[HistoryRecord]:
        """A workflow's raw checkpoints in position order, as stored (values still encoded).

        This is the record of a run that replay reads; :meth:`get` shows the
        same as a decoded timeline. ``run_id`` reads the run before the
        current one instead (``info.previous_run_id``, after
        ``legato.continue_as_new``).

        >>> for r in await rt.history("order-42"):
        ...     print(r.position, r.kind, r.name, r.ok, r.at)

        Raises:
            WorkflowNotFound: no workflow has this id.
            ValueError: ``run_id`` is neither its current nor its previous run.
        """
        record = await self.store.get(workflow_id)
        if record is None:
            raise WorkflowNotFound(workflow_id)
        if run_id is None or run_id == record.run_id:
            return history(await self.store.history(workflow_id))
        if run_id != record.previous_run_id:
            raise ValueError(
                f"workflow {workflow_id!r} has no run {run_id!r} kept: its current run is "
                f"{record.run_id!r} and the one before {record.previous_run_id!r} (only the "
                "run before the current one is kept)")
        return history(await self.store.history(workflow_id, run_id))

    async def workers(self) -> list[WorkerInfo]:
        """The workers serving this store: alive ones, and those that vanished within a day.

        Each worker announces itself every few seconds; one that stopped
        cleanly is removed, one that died stays, no longer ``alive``.

        >>> for w in await rt.workers():
        ...     print(w.id, w.alive, w.workflows)
        """
        now = self.wall.now()
        return [WorkerInfo(w.id, w.names, w.queues, to_datetime(w.started_at),
                           to_datetime(w.seen_at), now - w.seen_at < _ALIVE)
                for w in await self.store.workers()]

    async def _children(self, workflow_id: str) -> list[str]:
        ids: list[str] = []
        while True:
            page = await self.store.find(WorkflowQuery(
                parent=workflow_id, limit=_PAGE, offset=len(ids), newest_first=False))
            ids += [r.id for r in page]
            if len(page) < _PAGE:
                return ids

    async def list(
        self, status: Status | str | None = None, name: str | None = None, *,
        queue: str | None = None, parent: str | None = None,
        since: datetime | float | None = None, until: datetime | float | None = None,
        limit: int = 100, offset: int = 0, order: Literal["newest", "oldest"] = "newest",
    ) -> list[WorkflowInfo]:
        """Workflows, filtered, one page at a time (newest first by default).

        Failed workflows are the dead-letter queue: each shows its ``error``
        and ``failed_step``; ``rt.resume(id)`` retries one from its last
        checkpoint. Listed infos carry no ``steps``, ``children`` or
        ``events``: :meth:`get` reads those.

        >>> failed = await rt.list(status="failed", queue="emails")
        >>> recent = await rt.list(since=time.time() - 3600, order="oldest", limit=50)

        Args:
            status: only workflows in this status.
            name: only runs of the workflow with this name.
            queue: only workflows enqueued on this queue.
            parent: only the children of this workflow id.
            since: created at or after this time (a ``datetime``; naive means
                local time) or epoch seconds. A datetime counts to the
                microsecond: ``since=info.created_at`` includes that workflow,
                ``until=info.created_at`` excludes it.
            until: created before this time.
            limit: at most this many.
            offset: skip this many first (paging: ``offset=limit * page``).
            order: ``"newest"`` or ``"oldest"`` first, by creation time.
        """
        if order not in ("newest", "oldest"):
            raise ValueError(f"order must be 'newest' or 'oldest', not {order!r}")
        if limit < 0 or offset < 0:
            raise ValueError(f"limit and offset can't be negative (got {limit}, {offset})")
        query = WorkflowQuery(
            status=None if status is None else Status(status).value, name=name, queue=queue,
            parent=parent, since=_epoch(since), until=_epoch(until), limit=limit,
            offset=offset, newest_first=order == "newest")
        records = await self.store.find(query)
        return [make_info(r, self.serializer, await _failed_history(self.store, r),
                          with_steps=False) for r in records]


async def _failed_history(store: Store, record: WorkflowRecord) -> list[StepRecord] | None:
    # only failed workflows pay a query: it finds their failing step
    return await store.history(record.id) if record.status == "failed" else None


def _epoch(when: datetime | float | None) -> float | None:
    if when is None:
        return None
    if isinstance(when, datetime):
        # A datetime holds whole microseconds, rounded from the stored float: a step
        # back keeps `since=info.created_at` including that workflow, `until=` excluding it.
        return when.timestamp() - _MICROSECOND
    if isinstance(when, bool) or not isinstance(when, int | float):
        raise TypeError(f"since/until take a datetime or epoch seconds, not {when!r}")
    return float(when)


def _as_workflow(fn: Any) -> Workflow[Any, Any]:
    if isinstance(fn, Workflow):
        return fn
    raise TypeError(
        f"{getattr(fn, '__qualname__', fn)!r} is not a workflow; decorate it with "
        "@legato.workflow before passing it to Runtime.start/run"
    )


def run(
    fn: Callable[[*Ts], Awaitable[R]], /, *args: *Ts, store: str | Store = "legato.db",
    id: str | None = None, **kwargs: Any,
) -> R:
    """Run a workflow to completion from synchronous code, like ``asyncio.run``.

    Takes ``store=`` (default ``"legato.db"``) and ``id=`` besides the
    workflow's own arguments.

    >>> legato.run(research, "durable execution", store="legato.db", id="research-1")
    """

    async def main() -> R:
        async with Runtime(store) as rt:
            return await rt.run(fn, *args, id=id, **kwargs)

    return asyncio.run(main())
