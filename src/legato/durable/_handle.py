"""What callers hold: a workflow's handle, its status and its summary."""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast, final

from .._errors import WorkflowCancelled, WorkflowNotFound, WorkflowTimeout
from .._serde import decode_error
from ..store import StepRecord, WorkflowRecord

if TYPE_CHECKING:
    from ._runtime import Runtime

__all__ = ["Status", "StepInfo", "WorkflowHandle", "WorkflowInfo"]

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
class StepInfo:
    """One checkpoint of a workflow, as shown by :meth:`Runtime.get`."""

    position: str
    kind: str
    name: str
    ok: bool
    at: datetime


@dataclass(frozen=True, slots=True)
class WorkflowInfo:
    """A workflow's status and timings (``rt.get(id)``, ``rt.list()``).

    ``steps`` is filled by ``rt.get`` only; ``rt.list`` leaves it empty.
    ``failed_step`` is, for a failed workflow, the last step that failed (its
    position and name; ``None`` when the error came from the workflow's own
    code): with ``error`` it is what ``rt.list(status="failed")`` — the
    dead-letter queue — shows. ``queue`` and ``priority`` are as enqueued.
    ``run_id`` is new at the start and at every ``rt.resume(id)``: the id
    names the workflow, the run id one run of it (as in Temporal and Beluga);
    recovery after a crash continues the same run.
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

    @property
    def duration(self) -> float | None:
        """Seconds from creation to the end, for finished workflows."""
        if self.finished_at is None:
            return None
        return (self.finished_at - self.created_at).total_seconds()


def _time(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def make_info(record: WorkflowRecord, error: str | None,
              steps: list[StepRecord] | None = None, *, with_steps: bool = True
              ) -> WorkflowInfo:
    ordered = sorted((s for s in steps or [] if s.kind not in BOOKKEEPING),
                     key=lambda s: [int(p) for p in s.position.split(".")])
    infos = tuple(StepInfo(s.position, s.kind, s.name, s.ok, _time(s.created_at))
                  for s in ordered)
    failed = [i for i in infos if i.kind == "step" and not i.ok]
    return WorkflowInfo(
        id=record.id, name=record.name, status=Status(record.status),
        created_at=_time(record.created_at), updated_at=_time(record.updated_at),
        finished_at=_time(record.finished_at) if record.finished_at is not None else None,
        error=error, steps=infos if with_steps else (),
        failed_step=failed[-1] if failed and record.status == Status.FAILED else None,
        queue=record.queue, priority=record.priority, run_id=record.run_id,
    )


#: Records the engine keeps for replay checks, not durable calls of the workflow:
#: a task made in workflow code, a wait or child call reached.
BOOKKEEPING = frozenset({"branch", "started"})


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
        return (await self._record()).status  # type: ignore[return-value]

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
        be imported, else :class:`~legato.StepFailed`); a cancelled one raises
        :class:`~legato.WorkflowCancelled`.

        Raises:
            WorkflowTimeout: ``timeout`` seconds passed first (the workflow goes on).
            WorkflowNotFound: no workflow has this id.
        """
        try:
            async with asyncio.timeout(timeout):
                record = await self._runtime._wait_finished(self.id)
        except TimeoutError:
            raise WorkflowTimeout(
                f"workflow {self.id!r} did not finish within {timeout} s; it is still "
                "going: wait again with handle.result(), or check handle.status()"
            ) from None
        return self._outcome(record)

    def _outcome(self, record: WorkflowRecord) -> R:
        serializer = self._runtime.serializer
        if record.status == Status.SUCCEEDED:
            value = serializer.loads(record.result) if record.result is not None else None
            return cast(R, value)
        if record.error is None:  # cancelled before it ever ran
            raise WorkflowCancelled(f"workflow {self.id!r} was cancelled")
        raise decode_error(serializer.loads(record.error))

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
        ``timeout`` seconds pass (then ``None``).

        >>> progress = await handle.get_event("progress", timeout=5)

        Raises:
            WorkflowNotFound: no workflow has this id.
        """
        try:
            return await self._runtime._get_event(self.id, key, timeout)
        except TimeoutError:
            return None

    async def _record(self) -> WorkflowRecord:
        # A SQLite read doesn't suspend: without this, `while await h.status() != ...`
        # would never let the workflow run.
        await asyncio.sleep(0)
        record = await self._runtime.store.get(self.id)
        if record is None:
            raise WorkflowNotFound(self.id)
        return record
