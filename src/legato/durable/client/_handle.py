"""What callers hold: a workflow's handle, its status and its summary."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast, final

from ..._errors import WorkflowCancelled, WorkflowNotFound, WorkflowTimeout
from ..._serde import Serializer, decode_error
from ...store import StepRecord, WorkflowRecord, owner_worker
from ._inspection import StepInfo, decode_value, error_data, timeline, to_datetime
from ._stream_reader import StreamReader

if TYPE_CHECKING:
    from ._runtime import Runtime

__all__ = ["Status", "StepInfo", "WorkerInfo", "WorkflowHandle", "WorkflowInfo", "make_info"]

R = TypeVar("R")


class Status(enum.StrEnum):
    """Where a workflow is in its life; a ``str``, so ``status == "running"`` works."""

    PENDING = "pending"  # stored, not yet taken by a worker
    RUNNING = "running"
    WAITING = "waiting"  # suspended until a time, a signal or a child
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        """True for the final statuses."""
        return self in (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """A worker serving the store (``rt.workers()``): what it runs, and whether it lives.

    ``alive`` is false once it has not announced itself for 6 s (a worker
    announces itself every 2 s; one that stops cleanly is forgotten at once).

    >>> [w.id for w in await rt.workers() if "send_email" in w.workflows and w.alive]
    """

    id: str
    workflows: tuple[str, ...]
    queues: tuple[str, ...]
    started_at: datetime
    seen_at: datetime
    alive: bool


@dataclass(frozen=True, slots=True)
class WorkflowInfo:
    """A workflow's status, inputs, outcome, timings and steps (``rt.get(id)``, ``rt.list()``).

    ``steps`` is the timeline, in position order: every checkpoint with its
    kind, name, inferred start, commit time, attempts and a short summary of
    its outcome; ``rt.get`` fills it, ``rt.list`` leaves it empty (as it
    leaves ``children`` and ``events``). ``failed_step`` is, for a failed
    workflow, the last step that failed (``None`` when the error came from the
    workflow's own code): with ``error`` it is what ``rt.list(status="failed")``
    — the dead-letter queue — shows. ``error`` is ``"Type: message"`` and
    ``traceback`` the traceback recorded where it was raised. ``args`` and
    ``kwargs`` are the inputs, ``output`` the result of a succeeded workflow;
    values whose classes don't import in this process are shown in their
    stored JSON form. ``run_id`` is new at the start and at every
    ``rt.resume(id)``: the id names the workflow, the run id one run of it
    (as in Temporal and Beluga); recovery after a crash continues the same run.
    ``previous_run_id`` is the run it continued from (``legato.continue_as_new``).
    ``worker`` is the worker running it (its ``Runtime.worker_id``), while it
    is ``running``; ``attempt`` names that worker's current attempt at it
    (``"<worker>#<n>"``): a takeover or a claim after a stall starts another.

    Example::

        info = await rt.get("order-42")
        print(info.status, info.args, info.duration, info.error)
        print(info.traceback)
    """

    id: str
    name: str
    status: Status
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    error: str | None
    steps: tuple[StepInfo, ...] = ()
    failed_step: StepInfo | None = None
    queue: str | None = None
    priority: int = 0
    run_id: str = ""
    previous_run_id: str | None = None
    worker: str | None = None
    attempt: str | None = None
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    output: Any = None
    traceback: str | None = None
    parent_id: str | None = None
    children: tuple[str, ...] = ()
    events: Mapping[str, Any] = field(default_factory=dict)

    @property
    def duration(self) -> float | None:
        """Seconds from creation to the end, for finished workflows."""
        if self.finished_at is None:
            return None
        return (self.finished_at - self.created_at).total_seconds()


def make_info(record: WorkflowRecord, serializer: Serializer,
              steps: Sequence[StepRecord] | None = None, *, with_steps: bool = True,
              children: Sequence[str] = (), events: Mapping[str, Any] | None = None,
              ) -> WorkflowInfo:
    """A record and its checkpoints as a :class:`WorkflowInfo`.

    ``with_steps=False`` (a listing) reads ``steps`` only to find the failed one.
    """
    timeline_ = timeline(steps or (), record.created_at, serializer)
    failed = [i for i in timeline_ if i.kind == "step" and not i.ok]
    error = None if record.error is None else error_data(serializer, record.error)
    inputs = decode_value(serializer, record.input)
    if not isinstance(inputs, Mapping):
        inputs = {}
    output = None
    if record.result is not None and record.status == Status.SUCCEEDED:
        output = decode_value(serializer, record.result)
    return WorkflowInfo(
        id=record.id, name=record.name, status=Status(record.status),
        created_at=to_datetime(record.created_at), updated_at=to_datetime(record.updated_at),
        finished_at=(to_datetime(record.finished_at) if record.finished_at is not None
                     else None),
        error=None if error is None else error.text, steps=timeline_ if with_steps else (),
        failed_step=failed[-1] if failed and record.status == Status.FAILED else None,
        queue=record.queue, priority=record.priority, run_id=record.run_id,
        previous_run_id=record.previous_run_id,
        worker=None if record.owner is None else owner_worker(record.owner),
        attempt=record.owner, args=tuple(inputs.get("args") or ()),
        kwargs=dict(inputs.get("kwargs") or {}),
        output=output, traceback=None if error is None else error.traceback,
        parent_id=record.parent_id, children=tuple(children), events=dict(events or {}),
    )


@final
class WorkflowHandle(Generic[R]):
    """A reference to one workflow by id; cheap, holds no state but the id.

    Example::

        handle = await rt.start(report, "q3", id="report-q3")
        print(await handle.status())          # Status.RUNNING
        print(await handle.result(timeout=60))
    """

    __slots__ = ("_runtime", "id")

    def __init__(self, runtime: Runtime, id: str) -> None:
        self._runtime = runtime
        self.id = id

    def __repr__(self) -> str:
        return f"WorkflowHandle({self.id!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WorkflowHandle) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    async def status(self) -> Status:
        """The workflow's current status.

        Raises:
            WorkflowNotFound: no workflow has this id.
        """
        return Status((await self._record()).status)

    async def info(self) -> WorkflowInfo:
        """The workflow's status, timings, run id and recorded steps (as ``rt.get(id)``).

        >>> info = await handle.info()
        >>> info.status, info.run_id, [s.name for s in info.steps]

        Raises:
            WorkflowNotFound: no workflow has this id.
        """
        return await self._runtime.get(self.id)

    async def result(self, timeout: float | None = None) -> R:
        """Wait for the workflow to finish and return its result.

        A failed workflow raises its error (the same exception type when it can
        be imported, else :class:`~legato.StepFailed`), with the traceback
        recorded where it was raised attached as a note (``__notes__``, which
        Python prints under the error); a cancelled one raises
        :class:`~legato.WorkflowCancelled`.

        Raises:
            WorkflowTimeout: ``timeout`` seconds passed first (the workflow goes on).
            WorkflowNotFound: no workflow has this id.
        """
        try:
            async with asyncio.timeout(timeout):
                record = await self._runtime._waiter.finished(self.id)
        except TimeoutError:
            unserved = await self._runtime._waiter.unserved(self.id)
            raise WorkflowTimeout(unserved or (
                f"workflow {self.id!r} did not finish within {timeout} s; it is still "
                "going: wait again with handle.result(), or check handle.status()")
            ) from None
        return self._outcome(record)

    def _outcome(self, record: WorkflowRecord) -> R:
        serializer = self._runtime.serializer
        if record.status == Status.SUCCEEDED:
            value = serializer.loads(record.result) if record.result is not None else None
            return cast(R, value)
        if record.error is None:  # cancelled before it ever ran
            raise WorkflowCancelled(f"workflow {self.id!r} was cancelled")
        data = serializer.loads(record.error)
        error = decode_error(data)
        recorded = data.get("traceback") if isinstance(data, dict) else None
        if recorded and record.status == Status.FAILED:
            # the traceback of this raise is only this process's wait: show where it failed
            error.add_note(f"recorded traceback (workflow {self.id!r}, run {record.run_id}):\n"
                           f"{str(recorded).rstrip()}")
        raise error

    async def signal(self, name: str, payload: Any = None) -> None:
        """Send a signal to this workflow (see :meth:`Runtime.signal`).

        >>> await handle.signal("approval", {"approved": True})
        """
        await self._runtime.signal(self.id, name, payload)

    async def cancel(self) -> None:
        """Cancel this workflow and its children (see :meth:`Runtime.cancel`)."""
        await self._runtime.cancel(self.id)

    async def get_event(self, key: str, timeout: float | None = None) -> Any:
        """The latest value the workflow published with ``legato.set_event(key, ...)``.

        Waits until the event is set, the workflow finishes (then ``None``), or
        ``timeout`` seconds pass (then ``None``). A workflow id that doesn't
        exist (yet) is waited for like an unset event, as DBOS does: ``None``
        after the timeout, so a reader may start before the workflow does.

        >>> progress = await handle.get_event("progress", timeout=5)
        """
        try:
            return await self._runtime._waiter.event(self.id, key, timeout)
        except TimeoutError:
            return None

    def stream(self, key: str, offset: int = 0) -> StreamReader:
        """Read the workflow's stream ``key`` (``legato.stream(key)``), live, from ``offset``.

        An async iterator: each value once, in order, waiting for new ones;
        it ends when the stream is closed or the workflow has finished. It
        may start before, while or after the workflow writes; ``offset``
        (the reader's ``.offset`` where an earlier one stopped) skips what
        was read already.

        >>> async for token in handle.stream("tokens"):
        ...     print(token, end="")
        """
        if not isinstance(key, str) or not key:
            raise ValueError(f"handle.stream(key={key!r}): the key must be the non-empty "
                             "string the workflow writes with legato.stream(key)")
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise ValueError(f"offset={offset!r}: pass a whole number >= 0, the offset of "
                             "the first value to read (0: from the beginning)")
        rt = self._runtime
        return StreamReader(rt.store, rt._waiter.bus, rt.serializer.loads, self.id, key, offset)

    async def _record(self) -> WorkflowRecord:
        # A SQLite read doesn't suspend: without this, `while await h.status() != ...`
        # would never let the workflow run.
        await asyncio.sleep(0)
        record = await self._runtime.store.get(self.id)
        if record is None:
            raise WorkflowNotFound(self.id)
        return record
