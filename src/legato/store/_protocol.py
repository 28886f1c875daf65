"""The seam between the durable engine and a database.

The engine talks only to :class:`Store`; SQLite and PostgreSQL implement it,
and one contract test suite runs against both. Values arrive already
serialized (``bytes``): a store never sees Python objects. ``Store`` is made
of small protocols, one per concern — :class:`Journal` (a workflow's life and
checkpoints), :class:`Claims` (who runs what), :class:`Mailbox` (signals and
events), :class:`Inspection` (reads for people and tools), :class:`News`
(changes as they happen) — so a part of the engine can say which it needs.
"""

from __future__ import annotations

import asyncio
import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Final, Protocol

from .._errors import LegatoError
from ._inspection import EventRecord, WorkflowQuery
from ._schedule import ScheduleRecord, Schedules, ScheduleState
from ._stream import Streams, Updates

__all__ = [
    "INFER", "PRIORITY_MAX", "PRIORITY_MIN", "WF_COLUMNS", "ClaimRequest", "Claimed", "Infer",
    "Lease", "NewWorkflow", "Claims", "Inspection", "Journal", "Mailbox", "News", "QueueLimits",
    "Renewal", "Renewer", "ScheduleRecord", "ScheduleState", "Schedules", "Store", "StepRecord",
    "Streams", "Updates", "WorkerRecord", "WorkflowRecord", "check_priority", "check_resumable",
    "new_run_id", "news_of_start", "owner_worker",
]

# A queue priority is a 32-bit signed integer: PostgreSQL's ``integer`` column
# holds no more, and SQLite (which would take 64 bits) is held to the same.
PRIORITY_MIN = -(2**31)
PRIORITY_MAX = 2**31 - 1


def check_priority(priority: int) -> int:
    """``priority`` if it fits every store; else :class:`ValueError` naming the range."""
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise ValueError(
            f"priority={priority!r} is not an integer; use a whole number from "
            f"{PRIORITY_MIN} to {PRIORITY_MAX} (lower runs first)")
    if not PRIORITY_MIN <= priority <= PRIORITY_MAX:
        raise ValueError(
            f"priority={priority} is out of range; use a whole number from "
            f"{PRIORITY_MIN} to {PRIORITY_MAX} (a 32-bit integer, as PostgreSQL stores it)")
    return priority


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One checkpoint: the outcome of a durable operation at a position."""

    position: str
    kind: str  # "step", "sleep", "now", "random", "uuid", "race", ...
    name: str
    ok: bool  # False: ``value`` is an encoded error
    value: bytes | None
    created_at: float


@dataclass(frozen=True, slots=True)
class WorkflowRecord:
    """A workflow's row."""

    id: str
    name: str
    status: str
    input: bytes
    result: bytes | None
    error: bytes | None
    owner: str | None
    lease_until: float
    wake_at: float | None  # set while ``waiting`` on a timer (0: wake now)
    deadline: float | None  # durable time after which the workflow is cancelled
    cancel: bool  # cancellation requested, not yet carried out
    parent_id: str | None
    created_at: float
    updated_at: float
    finished_at: float | None
    queue: str | None = None  # the queue it was enqueued on, if any
    priority: int = 0  # lower first among pending workflows (DBOS's, Temporal's order)
    not_before: float | None = None  # durable time before which it isn't started
    dedup_key: str | None = None  # unique among a queue's unfinished workflows
    run_id: str = ""  # new at start, at every resume and at every continue-as-new
    previous_run_id: str | None = None  # the run this one continued as new, if any
    # times its lease was taken over from another worker that stopped renewing it (a
    # dead or hung process) since it was created or resumed; see Claimed
    recoveries: int = 0
    key: str | None = None  # its queue's concurrency key (a tenant, a customer), if any


# The workflows table's columns, in WorkflowRecord's field order (SELECT/RETURNING lists).
WF_COLUMNS = ", ".join(f.name for f in fields(WorkflowRecord))


@dataclass(frozen=True, slots=True)
class Renewal:
    """What one heartbeat did: the leases it extended, and those whose cancellation was asked.

    A lease given to a heartbeat and missing from ``renewed`` is held no more
    (another worker took the workflow over, or its run ended).
    """

    renewed: frozenset[str] = frozenset()
    cancelled: tuple[str, ...] = ()

    @classmethod
    def of(cls, rows: Sequence[tuple[str, object]]) -> Renewal:
        """From ``(workflow id, cancel asked)`` rows of the renewing statement."""
        return cls(frozenset(wid for wid, _ in rows), tuple(wid for wid, cancel in rows if cancel))


@dataclass(frozen=True, slots=True)
class Claimed(WorkflowRecord):
    """A workflow's row as a claim took it, with whom it took it from.

    ``previous_owner`` is the attempt (``"<worker id>#<n>"``) that held the
    lease when the claim found it lapsed: a takeover after that worker died
    or hung (:func:`owner_worker` names the worker). ``None`` when the
    workflow was pending or waiting, or its lease was given back
    (:meth:`Claims.release`, a graceful shutdown). A lease that lapsed under
    the claiming worker itself (a stalled event loop) has a ``previous_owner``
    but is not counted in ``recoveries``.

    ``fresh``: the workflow has no checkpoints yet (its first run has not
    recorded anything), so whoever runs it has no history to read. A store
    reads it once the claim holds the row, when no other attempt can add
    one; it may leave it ``False`` (PostgreSQL does for a claim of one row).
    """

    previous_owner: str | None = None
    fresh: bool = False

    @property
    def taken_over(self) -> bool:
        """Whether the claim took the workflow from another worker whose lease lapsed."""
        return (self.previous_owner is not None
                and owner_worker(self.previous_owner) != owner_worker(self.owner or ""))


@dataclass(frozen=True, slots=True)
class QueueLimits:
    """A queue's limits, as a claim enforces them (built from ``legato.Queue``).

    ``running`` workflows hold a slot; ``waiting`` ones don't (a woken one
    needs a free slot again, but not a rate-limit token: that counts starts).
    """

    name: str
    concurrency: int | None = None  # running at once, across every worker
    worker_concurrency: int | None = None  # running at once in one worker
    rate: tuple[int, float] | None = None  # (starts, per seconds of durable time)
    priority: bool = True  # order pending ones by priority (lower first), then FIFO
    key_concurrency: int | None = None  # running at once per key, across every worker
    key_rate: tuple[int, float] | None = None  # (starts, per seconds of durable time) per key

    @property
    def keyed(self) -> bool:
        """Whether workflows may carry a key: the queue limits something per key."""
        return self.key_concurrency is not None or self.key_rate is not None

    @property
    def caps_running(self) -> bool:
        """Whether a claim must count the queue's running workflows first."""
        return self.concurrency is not None or self.worker_concurrency is not None

    def room(self, wanted: int, running: int, mine: int) -> int:
        """How many of ``wanted`` may start with ``running`` running (``mine`` in this worker)."""
        if self.concurrency is not None:
            wanted = min(wanted, self.concurrency - running)
        if self.worker_concurrency is not None:
            wanted = min(wanted, self.worker_concurrency - mine)
        return wanted


@dataclass(frozen=True, slots=True)
class ClaimRequest:
    """What a worker asks of :meth:`Claims.claim`: who takes what, until when.

    Two clocks, named for what they are: ``real_now`` is the wall clock (as
    the store tells it, see :meth:`Claims.server_time`), which leases are read
    against; ``durable_now`` is the workflows' clock (a ``VirtualClock`` in
    tests), which timers, delays and rate windows are read against.

    Example::

        await store.claim(ClaimRequest(owner="host:1:w#7", lease_until=time.time() + 30,
                                       real_now=time.time(), durable_now=clock.now(),
                                       limit=100, names=["send_email"]))
    """

    owner: str  # the attempt that takes them: "<worker id>#<n>"
    lease_until: float  # real time the lease ends unless renewed
    real_now: float  # real time: running workflows whose lease ended before are taken over
    durable_now: float  # durable time: timers, delays and rate windows due by then
    limit: int  # at most this many
    names: Sequence[str]  # only workflows whose code the worker has
    queues: Sequence[QueueLimits] = ()  # the queues it serves, with their limits
    # The attempts the claiming worker runs now: their leases are not taken even if
    # lapsed (a renewal came late, a stall), as that would give the row a new attempt
    # under the running task and refuse its checkpoint in flight
    running: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class NewWorkflow:
    """What :meth:`Store.create` needs to insert a workflow."""

    id: str
    name: str
    input: bytes
    owner: str | None  # set: created already claimed by that worker ("running")
    lease_until: float
    parent_id: str | None = None
    deadline: float | None = None
    queue: str | None = None
    priority: int = 0
    not_before: float | None = None
    dedup_key: str | None = None
    run_id: str = field(default_factory=lambda: new_run_id())
    # (source workflow id, n): start with the source's records at top-level positions < n
    copy_from: tuple[str, int] | None = None
    key: str | None = None  # concurrency key within its queue (see QueueLimits.key_concurrency)

    def __post_init__(self) -> None:
        # Checked here, so nothing is written with a priority one store can't hold.
        check_priority(self.priority)


def news_of_start(wf: NewWorkflow) -> str:
    """The news a stored pending workflow makes: claimable now, or a timer for later.

    A delayed start is no work for any worker until it falls due: ``"timer"``
    news makes each re-read its next wake-up, not claim.
    """
    return "pending" if wf.not_before is None else "timer"


@dataclass(frozen=True, slots=True)
class WorkerRecord:
    """A worker serving the store, as it last announced itself."""

    id: str  # Runtime.worker_id
    names: tuple[str, ...]  # the workflows whose code it has
    queues: tuple[str, ...]  # the queues it serves
    started_at: float
    seen_at: float  # store time of its last announcement


class Infer(enum.Enum):
    """The type of :data:`INFER`."""

    INFER = "infer"


# ``finish(failed_at=INFER)``: the caller does not say where the failure was
# recorded; ``resume`` infers it from the history (see ``_forget``).
INFER: Final = Infer.INFER


# A lease held by one attempt: (workflow id, owner). An owner names an attempt,
# not just a worker (``"host:pid:worker#7"``), so two attempts in one process
# are told apart by every fenced write.
Lease = tuple[str, str]


def owner_worker(owner: str) -> str:
    """The worker part of an attempt's owner: ``"w#7"`` -> ``"w"``."""
    return owner.rpartition("#")[0] or owner


def check_resumable(record: WorkflowRecord) -> None:
    """Raise unless ``record`` is a failed or cancelled workflow (what ``resume`` restarts)."""
    if record.status not in ("failed", "cancelled"):
        raise LegatoError(
            f"workflow {record.id!r} is {record.status}; resume restarts failed or cancelled "
            "workflows (and starts pending ones now): wait for it, or cancel it first")


def new_run_id() -> str:
    """A fresh run id: one per start and per resume of a workflow."""
    return uuid.uuid4().hex


class Renewer(Protocol):
    """A store connection of its own for renewing leases from another thread.

    Made by :meth:`Store.renewer` and used only in that thread's event loop,
    so a blocked main loop doesn't stop the renewals.
    """

    async def open(self) -> None: ...
    async def close(self) -> None: ...

    async def heartbeat(self, leases: Sequence[Lease], lease_until: float) -> Renewal:
        """As :meth:`Store.heartbeat`."""
        ...

    async def server_time(self) -> float | None:
        """As :meth:`Store.server_time`."""
        ...

    async def announce(self, worker: WorkerRecord) -> None:
        """Record that ``worker`` is alive (its ``seen_at``), with what it serves."""
        ...

    async def unknown_names(self, known: Sequence[str]) -> list[str]:
        """Names of pending workflows not in ``known`` (a few, not every one)."""
        ...


class Journal(Protocol):
    """A workflow's life and its checkpoints: create, record, finish, continue, resume, cancel."""

    async def create(self, wf: NewWorkflow) -> WorkflowRecord | None:
        """Insert ``wf``; return ``None`` if inserted, else the existing row (nothing written).

        Raises:
            DuplicateWorkflow: ``wf.dedup_key`` is held by another unfinished
                workflow of the same queue (nothing written).
        """
        ...

    async def debounce(self, wf: NewWorkflow, key: str, until: float | None
                       ) -> WorkflowRecord | None:
        """Fold a debounced start into the pending run of ``wf.name`` holding ``key``, or insert it.

        A pending run of that name holding ``key`` takes ``wf``'s input and
        deadline, and its ``not_before`` becomes ``wf.not_before`` (the new
        end of the window) capped by its own ``until``: that row is returned.
        Else ``wf`` is inserted ``pending``, holding ``key`` with ``until``
        (the latest it may be pushed to; ``None``: no cap), and ``None`` is
        returned, unless its id is taken: then that row is returned (nothing
        written). One pending run per name and key, across processes.
        """
        ...

    def append(self, workflow_id: str, owner: str, step: StepRecord) -> asyncio.Future[bool]:
        """Record a checkpoint if ``owner`` still holds the workflow's lease.

        Returns a future resolving to ``False`` when the lease was lost (nothing
        written). The caller may choose not to await it (``now()``/``random()``):
        writes commit in the order they were made.
        """
        ...

    async def finish(
        self, workflow_id: str, owner: str, status: str, result: bytes | None,
        error: bytes | None, failed_at: str | Infer | None = INFER,
    ) -> bool:
        """Set a final status if ``owner`` holds the lease; ``False`` if it does not.

        ``failed_at`` (with ``status="failed"``) is the position of the
        recorded failure (a step's, a child's) that ended the run, the one
        :meth:`resume` forgets; ``None`` when no record holds the error (the
        workflow's own code raised it; resume forgets nothing). Left
        :data:`INFER`, resume infers it from the history, which misjudges some
        histories (see ``_forget.infer_failed_at``).
        """
        ...

    async def continue_as_new(self, workflow_id: str, owner: str, input: bytes) -> str | None:
        """Start the workflow afresh as a new run with ``input``, if ``owner`` holds it.

        In one transaction: the current run's history becomes the previous
        run's (replacing the one kept before), the history empties, the input
        and run id change, and the row stays ``running`` under ``owner``.
        Returns the new run id; ``None`` when the lease was lost (nothing written).
        """
        ...

    async def resume(self, workflow_id: str) -> WorkflowRecord:
        """Make a failed or cancelled workflow pending again, forgetting the failure that ended it.

        Only that one record goes (and its retry attempts): failures the
        workflow handled replay as recorded. See ``finish``'s ``failed_at``.
        A succeeded workflow is left as it is; a pending one (queued or
        delayed) leaves its queue and delay, to be claimed now.

        Raises:
            WorkflowNotFound: no such workflow. LegatoError: it is running or waiting.
        """
        ...

    async def request_cancel(self, workflow_id: str) -> WorkflowRecord:
        """Ask for cancellation; a pending one is cancelled at once, a waiting one woken.

        Raises:
            WorkflowNotFound: no such workflow.
        """
        ...

    async def history(self, workflow_id: str, run_id: str | None = None) -> list[StepRecord]:
        """Every checkpoint of a workflow's current run, in one query.

        ``run_id``: of the run before the current one (``previous_run_id``),
        kept by :meth:`continue_as_new`; ``[]`` for any other run id.
        """
        ...


class Claims(Protocol):
    """Who runs what: claims, leases, unloading, and when to look again."""

    async def claim(self, request: ClaimRequest) -> list[Claimed]:
        """Take up to ``request.limit`` workflows that can run now, in one write transaction.

        That is: pending ones whose ``not_before`` has passed (durable time),
        running ones whose lease lapsed before ``real_now`` (real time), and
        waiting ones whose ``wake_at`` or ``deadline`` is at or before
        ``durable_now``. Only workflows whose name is in ``names`` (the code
        this worker has). Pending and waiting workflows of a queue are taken
        only if the queue is in ``queues``, within its limits (counted in the
        same transaction, so they hold across processes; on a keyed queue,
        per key, the keys served round-robin); taking over a
        lapsed lease ignores limits (that workflow holds its slot already),
        names the attempt that held it (``previous_owner``) and, when that was
        another worker's, adds one to the row's ``recoveries``.
        """
        ...

    async def heartbeat(self, leases: Sequence[Lease], lease_until: float) -> Renewal:
        """Extend ``leases`` still held; say which were, and which of those have a cancel asked.

        Only the given (workflow id, owner) pairs are renewed, so a row whose
        run ended without finishing it (a failed write) lapses and is taken over.
        """
        ...

    async def release(self, leases: Sequence[Lease]) -> None:
        """Give up leases at once (a graceful shutdown), so another worker takes over."""
        ...

    async def suspend(
        self, workflow_id: str, owner: str, wake_at: float | None,
        signal: str | None = None, child: str | None = None,
    ) -> bool:
        """Unload a running workflow: ``waiting``, no owner, woken at ``wake_at`` or by news.

        If what it waits for arrived meanwhile (an unconsumed ``signal`` of
        that name, or ``child`` finished), it is due at once: no lost wake-up.
        """
        ...

    async def next_lease_expiry(self) -> float | None:
        """The earliest lease end among running workflows, or ``None``."""
        ...

    async def next_wake(
        self, clock_now: float | None = None, queues: Sequence[QueueLimits] = ()
    ) -> float | None:
        """The earliest durable time after ``clock_now`` something becomes due, or ``None``.

        Times at or before ``clock_now`` are left out: what was due then was
        claimed, or is blocked (a full worker or queue) until a slot frees,
        which pokes the worker. That is ``wake_at`` or ``deadline`` among waiting workflows,
        ``not_before`` among pending ones and, for each rate-limited queue in
        ``queues`` whose window is full at ``clock_now`` with work pending,
        the time its oldest start leaves the window.
        """
        ...

    def renewer(self) -> Renewer:
        """A new, unopened connection for renewing leases from another thread."""
        ...

    async def server_time(self) -> float | None:
        """The store's clock (epoch seconds), or ``None`` when it is this machine's clock.

        Workers on several machines compare lease ends and timers: they read
        them against this clock (see ``durable``'s ``WallClock``), so a
        machine whose clock is ahead doesn't take live workers' workflows.
        """
        ...

    async def workers(self) -> list[WorkerRecord]:
        """The workers that announced themselves (see :meth:`Renewer.announce`), by id."""
        ...

    async def retire(self, worker_id: str) -> None:
        """Forget a worker that stopped."""
        ...


class Mailbox(Protocol):
    """Messages to and from workflows: signals and events."""

    async def send_signal(
        self, workflow_id: str, name: str, payload: bytes,
        sender: tuple[str, str, StepRecord] | None = None,
    ) -> bool:
        """Store a signal and wake its workflow if it is waiting.

        ``sender`` (workflow id, owner, checkpoint) records the send in the
        sending workflow in the same transaction; ``False``: its lease was lost.

        Raises:
            WorkflowNotFound: no such workflow. LegatoError: it has finished.
        """
        ...

    async def take_signal(
        self, workflow_id: str, owner: str, name: str, step: StepRecord
    ) -> tuple[str, bytes | None]:
        """Consume the oldest unconsumed signal ``name`` and record ``step`` with it, atomically.

        The checkpoint's value is built from the signal's payload. Returns
        ``("taken", payload)``, ``("none", None)`` when no such signal is
        waiting, or ``("lost", None)`` when ``owner`` lost the lease (nothing
        written in either of the last two).
        """
        ...

    async def untake_signal(self, workflow_id: str, owner: str, position: str) -> None:
        """Undo :meth:`take_signal` at ``position``: the signal waits again, the record goes."""
        ...

    async def set_event(
        self, workflow_id: str, owner: str, key: str, value: bytes, step: StepRecord | None
    ) -> bool:
        """Publish an event value and record ``step``, atomically; ``False``: lease lost.

        ``step=None`` (an event set inside a step's body) records nothing.
        """
        ...

    async def get_event(self, workflow_id: str, key: str) -> tuple[bool, bytes | None]:
        """(found, value) of a workflow's event."""
        ...


class Inspection(Protocol):
    """Reading workflows for people and tools."""

    async def get(self, workflow_id: str) -> WorkflowRecord | None:
        """One workflow's row."""
        ...

    async def find(self, query: WorkflowQuery) -> list[WorkflowRecord]:
        """Workflows matching ``query``, ordered by creation time, one page of them."""
        ...

    async def events(self, workflow_id: str) -> list[EventRecord]:
        """Every event a workflow published (its latest value per key), by key."""
        ...

    async def children(self, workflow_id: str) -> list[str]:
        """Ids of the unfinished workflows whose parent is ``workflow_id``."""
        ...

    async def list(
        self, *, status: str | None, name: str | None, limit: int
    ) -> list[WorkflowRecord]:
        """Workflows, newest first."""
        ...

class News(Protocol):
    """Changes made by any process on the store, as they happen."""

    async def wait_for_news(self, timeout: float) -> list[tuple[str, str]]:
        """Wait up to ``timeout`` s for news from any process on the store.

        News is ``(kind, workflow_id)``, kind one of ``"pending"`` (claimable
        now), ``"signal"``, ``"wake"``, ``"timer"`` (due at a later time: a
        suspend until then, a delayed start), ``"cancel"``, ``"event"`` and
        ``"finish"``; ``[]`` means the timeout passed. News may be lost
        (a dropped connection, a reader that slept through pruning): callers
        still poll, slowly.
        """
        ...

    async def follow_ends(self, on: bool) -> None:
        """Hear ``"finish"`` and ``"event"`` news from now on (``on``), or stop.

        A process hears them only while it follows them (the worker's relay
        follows while something in the process waits on a result, an event,
        a stream or an update): a store may send them only to followers, so
        that a finish doesn't wake every process. Once this returns, news of
        later finishes is heard. A store whose news costs nothing per
        listener may always send them and make this a no-op.
        """
        ...


class Store(Journal, Claims, Mailbox, Inspection, News, Schedules, Streams, Updates,
            Protocol):
    """Persistence for workflows and their checkpoints.

    Writes made during one event-loop turn may be committed together; every
    write method returns only once its write is durable.
    """

    url: str

    async def open(self) -> None:
        """Connect, create or migrate the schema."""
        ...

    async def close(self) -> None:
        """Flush pending writes and disconnect."""
        ...
