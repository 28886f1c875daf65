"""Positions and replay: the state of one workflow run and its scopes.

Every durable operation takes the next position in its *scope*. The
workflow body has the root scope (positions ``1``, ``2``, ...); each
concurrent branch gets a child scope named after the position it took in its
parent (``3.1``, ``3.2``, ...), assigned when the branch is created, so
positions do not depend on which branch finishes first. A primitive (race,
vote, ...) takes one position for its decision and numbers its own branches
under it from 0 (``4.0.1``, ``4.1.1``, ...).

Tasks of legato's own machinery are made with :func:`detached` so that they
take no position.

A :class:`Scope` is what ``flow``'s ``RECORDER`` context variable holds while
workflow code runs: it implements ``flow._hooks.Recorder``.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast, final

from .._errors import NonDeterminismError
from .._serde import decode_error, encode_error
from ..flow._hooks import RECORDER, UNDECIDED
from ..store import StepRecord

if TYPE_CHECKING:
    from .._clock import Clock
    from .._serde import Serializer
    from ..store import Store, WorkflowRecord
    from ._workflow import Workflow

__all__ = ["Host", "LeaseLost", "Run", "Scope", "Suspend", "current_scope", "detached"]

T = TypeVar("T")

_POLL = 0.5  # seconds; how often an in-memory wait looks for news from other processes


class Host(Protocol):
    """What a run asks of the worker hosting it (children, in-process news)."""

    async def start_child(
        self, wf: Workflow[Any, Any], child_id: str, data: bytes, parent: Run
    ) -> WorkflowRecord | None:
        """Create (or find) a child workflow's row and run it here if there is room."""
        ...

    def local_task(self, workflow_id: str) -> asyncio.Task[Any] | None:
        """The task running ``workflow_id`` in this process, if any."""
        ...

    def event_set(self, workflow_id: str) -> None:
        """Wake in-process readers of ``workflow_id``'s events."""
        ...

    def signalled(self, workflow_id: str) -> None:
        """A signal for ``workflow_id`` was stored: wake it if it waits here."""
        ...


class LeaseLost(BaseException):
    """Unwinds a workflow whose lease another worker took over.

    A ``BaseException`` so that user ``except Exception`` blocks don't catch it:
    nothing more may be recorded by this process for that workflow.
    """


class Suspend(BaseException):
    """Unwinds a workflow that waits long, so it holds no task and no memory.

    Not a failure and not a cancellation: sagas don't compensate, primitives
    record no decision. User ``finally`` blocks do run. ``wake_at`` is the
    durable time to replay it at (``None``: when a signal or child arrives).
    """

    def __init__(self, wake_at: float | None, signal: str | None = None,
                 child: str | None = None) -> None:
        super().__init__(wake_at)
        self.wake_at = wake_at
        self.signal = signal  # the signal name it waits for, if any
        self.child = child  # the child workflow id it waits for, if any


@final
class Run:
    """One execution of one workflow: its history and where it records."""

    __slots__ = ("branches", "cancel_reason", "cancel_requested", "clock", "history", "host",
                 "id", "name", "news", "nondeterminism", "owner", "serializer", "store",
                 "suspend_after", "task", "unwinding")

    def __init__(
        self, *, id: str, name: str, owner: str, history: list[StepRecord],
        store: Store, serializer: Serializer, clock: Clock, host: Host,
        suspend_after: float = 5.0,
    ) -> None:
        self.id = id
        self.name = name
        self.owner = owner
        self.history = {step.position: step for step in history}
        self.store = store
        self.serializer = serializer
        self.clock = clock
        self.host = host
        self.suspend_after = suspend_after
        # Kept even if user code swallows the error: the run fails with it anyway.
        self.nondeterminism: NonDeterminismError | None = None
        self.task: asyncio.Task[Any] | None = None  # the task running the workflow body
        self.branches = 0  # live concurrent branches (tasks) of this run
        self.news = asyncio.Event()  # set when a signal or a child's end may have arrived
        self.cancel_requested = False
        self.cancel_reason = ""
        self.unwinding: Suspend | None = None

    def suspend(self, wake_at: float | None, *, signal: str | None = None,
                child: str | None = None) -> Suspend:
        """The exception that unloads this run; durable calls made while it unwinds
        (in ``finally`` blocks) raise it again instead of running."""
        self.unwinding = Suspend(wake_at, signal, child)
        return self.unwinding

    def request_cancel(self, reason: str) -> None:
        """Cancel the workflow body now; it sees ``CancelledError`` at its current await."""
        if not self.cancel_requested:
            self.cancel_requested, self.cancel_reason = True, reason
            if self.task is not None:
                self.task.cancel()

    def can_suspend(self, scope: Scope) -> bool:
        """Only a workflow with nothing else in flight is unloaded: the body's own wait.

        A run being cancelled stays, so the cancellation reaches its wait.
        """
        return scope.suspendable and self.branches == 0 and not self.cancel_requested

    async def wait_news(self, until: float | None) -> None:
        """Wait for news (a signal, a child's end), durable time ``until``, or a poll tick.

        Other processes' signals arrive as the store's news; the poll tick is
        the safety net for news that was lost.
        """
        self.news.clear()
        waits: list[asyncio.Future[Any]] = [detached(self.news.wait())]
        if until is not None:
            waits.append(detached(self.clock.sleep_until(until)))
        try:
            await asyncio.wait(waits, timeout=_POLL, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    def replay(self, position: str, kind: str, name: str) -> StepRecord | None:
        """The record at ``position``, checked against what the code does now."""
        if self.unwinding is not None:
            raise self.unwinding
        record = self.history.get(position)
        if record is not None and (record.kind != kind or record.name != name):
            error = NonDeterminismError(
                self.id, position, _describe(record.kind, record.name), _describe(kind, name)
            )
            self.nondeterminism = self.nondeterminism or error
            raise error
        return record

    def outcome(self, record: StepRecord) -> Any:
        """The recorded value, or raise the recorded error."""
        value = self.serializer.loads(record.value) if record.value is not None else None
        if record.ok:
            return value
        raise decode_error(cast(dict[str, Any], value))

    def write(self, position: str, kind: str, name: str, ok: bool, value: bytes | None
              ) -> asyncio.Future[bool]:
        step = StepRecord(position, kind, name, ok, value, time.time())
        return self.store.append(self.id, self.owner, step)

    async def record(self, position: str, kind: str, name: str, value: Any) -> None:
        """Commit a value at ``position``; return once it is durable."""
        data = self.serializer.dumps(value, label=f"the result of {_describe(kind, name)}")
        await self._committed(self.write(position, kind, name, True, data))

    async def record_error(self, position: str, kind: str, name: str, exc: BaseException) -> None:
        data = self.serializer.dumps(encode_error(exc), label=f"the error of {kind} {name!r}")
        await self._committed(self.write(position, kind, name, False, data))

    async def record_raw(self, position: str, kind: str, name: str, data: bytes | None) -> None:
        """Commit already-serialized ``data`` (``None`` allowed) at ``position``."""
        await self._committed(self.write(position, kind, name, True, data))

    def record_nowait(self, position: str, kind: str, value: Any, name: str = "") -> None:
        """Record without waiting; later writes commit after this one."""
        data = self.serializer.dumps(value, label=f"legato.{kind}()")
        self.write(position, kind, name, True, data).add_done_callback(_consume)

    async def _committed(self, write: asyncio.Future[bool]) -> None:
        if not await write:
            raise self.lease_lost()

    def lease_lost(self) -> LeaseLost:
        """The exception that stops this run: another worker took the workflow over."""
        return LeaseLost(f"workflow {self.id!r} is now owned by another worker")


@final
class Scope:
    """A position counter for one branch of a workflow (a ``flow`` Recorder)."""

    __slots__ = ("counter", "prefix", "run", "suspendable")

    def __init__(self, run: Run, prefix: str = "", *, suspendable: bool | None = None) -> None:
        self.run = run
        self.prefix = prefix
        self.counter = 0
        # The body's own scope may unload the run; a branch's may not.
        self.suspendable = prefix == "" if suspendable is None else suspendable

    def __repr__(self) -> str:
        return f"<Scope {self.run.id!r} at {self.prefix}{self.counter}>"

    def next_position(self) -> str:
        self.counter += 1
        return f"{self.prefix}{self.counter}"

    def branch(self) -> Scope:
        """A child scope for a new concurrent branch (takes one position here)."""
        return Scope(self.run, self.next_position() + ".")

    # -- flow._hooks.Recorder ----------------------------------------------------

    def fork(self, kind: str, count: int) -> _Fork:
        position = self.next_position()
        record = self.run.replay(position, kind, "")
        decision = self.run.outcome(record) if record is not None else UNDECIDED
        return _Fork(self.run, position, kind, decision)

    async def sleep(self, seconds: float) -> None:
        run = self.run
        position = self.next_position()
        record = run.replay(position, "sleep", "")
        if record is not None:
            wake_at = float(run.outcome(record))
        else:
            wake_at = run.clock.now() + seconds
            await run.record(position, "sleep", "", wake_at)
        if wake_at - run.clock.now() > run.suspend_after and run.can_suspend(self):
            raise run.suspend(wake_at)
        await run.clock.sleep_until(wake_at)


@final
class _Fork:
    __slots__ = ("_kind", "_run", "decision", "position")

    def __init__(self, run: Run, position: str, kind: str, decision: Any) -> None:
        self._run = run
        self._kind = kind
        self.position = position
        self.decision = decision

    def context(self, index: int) -> contextvars.Context:
        context = contextvars.copy_context()
        context.run(RECORDER.set, Scope(self._run, f"{self.position}.{index}."))
        return context

    async def decide(self, decision: Any) -> None:
        await self._run.record(self.position, self._kind, "", decision)
        self.decision = decision


def detached(coro: Coroutine[Any, Any, T], name: str | None = None) -> asyncio.Task[T]:
    """A task of legato's own machinery: it takes no position and is no branch.

    A task created from workflow code would otherwise become a branch and
    shift the positions of everything after it, differently on replay.
    """
    context = contextvars.copy_context()
    context.run(RECORDER.set, None)
    return asyncio.get_running_loop().create_task(coro, name=name, context=context)


def current_scope() -> Scope | None:
    """The scope of the workflow code running now, or ``None``."""
    scope = RECORDER.get()
    return scope if isinstance(scope, Scope) else None


def _describe(kind: str, name: str) -> str:
    return f"{kind} {name!r}" if name else kind


def _consume(fut: asyncio.Future[bool]) -> None:
    # A failed fire-and-forget write surfaces at the run's next awaited write.
    if not fut.cancelled():
        fut.exception()
