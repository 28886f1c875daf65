"""``legato.Runtime``: wires a store, a serializer, a clock and a worker together."""

from __future__ import annotations

import asyncio
import math
import os
import uuid
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import Any, Self, TypeVar, TypeVarTuple, final, overload

from ..._clock import Clock, SystemClock
from ..._duration import Duration, to_seconds
from ..._errors import WorkflowConflict, WorkflowNotFound
from ..._serde import JsonSerializer, Serializer
from ...store import NewWorkflow, Store, open_store
from ..engine import (
    Engine,
    asyncio_guard,
    cancel_children,
    observe,
    task_factory,
    unrecorded,
)
from ..worker import NewsRelay, WakeBus, Worker, new_owner_id, read_store_clock
from ..workflow import Queue, Workflow
from ._bound_queue import BoundQueue, check_key, declare
from ._debounce import Debounced, DebounceSpec
from ._fork import fork_point
from ._handle import WorkflowHandle
from ._ids import check_id
from ._runtime_inspection import RuntimeInspection
from ._runtime_schedules import RuntimeSchedules
from ._updates import send_update
from ._waiter import Waiter

__all__ = ["Runtime", "run"]

R = TypeVar("R")
Ts = TypeVarTuple("Ts")


@final
class Runtime(RuntimeInspection, RuntimeSchedules):
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
        self._news = NewsRelay(self.store.wait_for_news, bus, self._worker,
                               follow=getattr(self.store, "follow_ends", None))
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
