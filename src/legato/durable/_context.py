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
import contextlib
import contextvars
import time
from collections.abc import Awaitable, Coroutine
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast, final

from .._errors import NonDeterminismError, StoreError
from .._serde import decode_error, encode_error
from ..flow._hooks import RECORDER, UNDECIDED
from ..store import StepRecord

if TYPE_CHECKING:
    from .._clock import Clock
    from .._serde import Serializer
    from ..store import Store, WorkflowRecord
    from ._workflow import Workflow

__all__ = ["Aborted", "Host", "LeaseLost", "Run", "Scope", "Shutdown", "Suspend", "Unwind",
           "current_scope", "detached"]

T = TypeVar("T")

_POLL = 0.5  # seconds; how often an in-memory wait looks for news from other processes
# Taken before a Runtime may refuse asyncio.wait's timing decisions in workflow code.
_WAIT = asyncio.wait


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

    def cancelled(self, workflow_id: str) -> None:
        """A cancellation of ``workflow_id`` was stored: deliver it if it runs here."""
        ...


class Unwind(BaseException):
    """Unwinds a workflow's code without failing or cancelling the workflow.

    A ``BaseException`` so that user ``except Exception`` blocks don't catch it
    and primitives let it pass. Once a run unwinds, every durable call made
    while it unwinds (in ``finally`` blocks) raises it again instead of
    running: nothing more is recorded by this attempt. Sagas don't compensate.
    """


class Suspend(Unwind):
    """Unloads a workflow that waits long, so it holds no task and no memory.

    ``wake_at`` is the durable time to replay it at (``None``: when a signal
    or child arrives).
    """

    def __init__(self, wake_at: float | None, signal: str | None = None,
                 child: str | None = None) -> None:
        super().__init__(wake_at)
        self.wake_at = wake_at
        self.signal = signal  # the signal name it waits for, if any
        self.child = child  # the child workflow id it waits for, if any


class LeaseLost(Unwind):
    """Another worker took the workflow over: this process records nothing more for it."""


class Shutdown(Unwind):
    """The runtime is stopping: the workflow is left for another worker to resume."""


class Aborted(Unwind):
    """A store write failed: this attempt stops and resumes from its last checkpoint.

    A store error is never shown to workflow code, which might take a path a
    replay contradicts (an ``except Exception`` fallback); it is retried as
    after a crash.
    """


@final
class Run:
    """One execution of one workflow: its history and where it records.

    Every write goes through :meth:`commit` (awaited) or :meth:`commit_later`
    (for synchronous calls such as ``legato.now()``); :meth:`flush` makes the
    latter durable before any effect that could reveal their values.
    """

    __slots__ = ("branches", "cancel_reason", "cancel_requested", "clock", "failed", "history",
                 "host", "id", "name", "news", "nondeterminism", "owner", "pending", "reach",
                 "serializer", "signal_positions", "store", "suspend_after", "takes", "task",
                 "unwinding")

    def __init__(
        self, *, id: str, name: str, owner: str, history: list[StepRecord],
        store: Store, serializer: Serializer, clock: Clock, host: Host,
        suspend_after: float = 5.0,
    ) -> None:
        self.id = id
        self.name = name
        self.owner = owner
        self.history = {step.position: step for step in history}
        self.reach = _reach(self.history)
        # where signals were (or are being) taken: given back if their branch loses
        self.signal_positions = [s.position for s in history if s.kind == "signal"]
        self.takes: dict[str, asyncio.Future[Any]] = {}  # takes in flight, by position
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
        # Set once this attempt unwinds; kept even if user code swallows the exception.
        self.unwinding: Unwind | None = None
        self.pending: list[asyncio.Future[bool]] = []  # commit_later writes not yet awaited
        # the last recorded failure and its position: if it ends the run, rt.resume
        # forgets that record only (errors the workflow handled stay recorded)
        self.failed: tuple[BaseException, str] | None = None

    # -- unwinding -----------------------------------------------------------------

    def unwind(self, exc: Unwind) -> Unwind:
        """Start unwinding with ``exc`` (the first reason wins); return what to raise."""
        if self.unwinding is None:
            self.unwinding = exc
        return self.unwinding

    def suspend(self, wake_at: float | None, *, signal: str | None = None,
                child: str | None = None) -> Unwind:
        """The exception that unloads this run."""
        return self.unwind(Suspend(wake_at, signal, child))

    def lease_lost(self) -> Unwind:
        """The exception that stops this run: another worker took the workflow over."""
        return self.unwind(LeaseLost(f"workflow {self.id!r} is now owned by another worker"))

    def abort(self, error: BaseException) -> Unwind:
        """The exception that stops this attempt after a failed store write."""
        aborted = Aborted(f"a write of workflow {self.id!r} failed: {error!r}")
        aborted.__cause__ = error
        return self.unwind(aborted)

    def request_cancel(self, reason: str) -> None:
        """Cancel the workflow body now; it sees ``CancelledError`` at its current await."""
        if not self.cancel_requested:
            self.cancel_requested, self.cancel_reason = True, reason
            if self.task is not None:
                self.task.cancel()

    def stop(self) -> None:
        """Mark the run as shutting down; its task is then cancelled and unwinds.

        ``finally`` blocks run, nothing more is recorded, sagas don't compensate.
        """
        self.unwind(Shutdown(f"the runtime running workflow {self.id!r} is stopping"))

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
            await _WAIT(waits, timeout=_POLL, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    # -- replay --------------------------------------------------------------------

    def replay(self, position: str, kind: str, name: str, *, nested: bool = False
               ) -> StepRecord | None:
        """The record at ``position``, checked against what the code does now.

        ``None`` when nothing is recorded there, which is only allowed where
        the history has not gone past ``position`` in its scope: a recorded
        later position means the code now does something at ``position``
        where it did something else before (a shifted position). ``nested``
        operations own sub-positions (a step's attempts, a wait's deadline, a
        primitive's branches); for the others, records under ``position``
        mean it was something else before.
        """
        if self.unwinding is not None:
            raise self.unwinding
        record = self.history.get(position)
        if record is None:
            if self.reach:
                self._check_fresh(position, kind, name, nested)
            return None
        if record.kind != kind or record.name != name:
            raise self._diverged(position, _describe(record.kind, record.name),
                                 _describe(kind, name))
        return record

    def _check_fresh(self, position: str, kind: str, name: str, nested: bool) -> None:
        prefix, _, index = position.rpartition(".")
        scope = f"{prefix}." if prefix else ""
        if self.reach.get(scope, 0) > int(index):
            raise self._diverged(
                position, "no call (yet it goes on past this position: a task, a wait or "
                "code since changed took it)", _describe(kind, name))
        if not nested and f"{position}." in self.reach:
            raise self._diverged(
                position, "a task or primitive (records under this position)",
                _describe(kind, name))

    def _diverged(self, position: str, recorded: str, now: str) -> NonDeterminismError:
        error = NonDeterminismError(self.id, position, recorded, now)
        self.nondeterminism = self.nondeterminism or error
        return error

    def outcome(self, record: StepRecord) -> Any:
        """The recorded value, or raise the recorded error."""
        value = self.serializer.loads(record.value) if record.value is not None else None
        if record.ok:
            return value
        raise decode_error(cast(dict[str, Any], value))

    # -- writing -------------------------------------------------------------------

    async def commit(self, position: str, kind: str, name: str, value: Any) -> None:
        """Commit a value at ``position``; return once it is durable."""
        data = self.serializer.dumps(value, label=f"the result of {_describe(kind, name)}")
        await self.committed(self._write(position, kind, name, True, data))

    async def commit_raw(self, position: str, kind: str, name: str, data: bytes | None) -> None:
        """Commit already-serialized ``data`` (``None`` allowed) at ``position``."""
        await self.committed(self._write(position, kind, name, True, data))

    async def commit_error(self, position: str, kind: str, name: str,
                           exc: BaseException) -> None:
        """Commit an error at ``position``; return once it is durable."""
        data = self.serializer.dumps(encode_error(exc), label=f"the error of {kind} {name!r}")
        await self.committed(self._write(position, kind, name, False, data))

    def commit_later(self, position: str, kind: str, name: str, value: Any) -> None:
        """Write without waiting; :meth:`flush` (before any effect) makes it durable.

        For synchronous calls (``legato.now()``, ``patched()``, a new task):
        their value can only leave the workflow through a later durable call,
        and every durable call flushes first.
        """
        if self.unwinding is not None:
            raise self.unwinding
        data = self.serializer.dumps(value, label=f"legato.{kind}()")
        write = self._write(position, kind, name, True, data)
        write.add_done_callback(self._settled)
        self.pending.append(write)

    async def flush(self) -> None:
        """Wait until every :meth:`commit_later` write is durable (or raise why not)."""
        while self.pending:
            write = self.pending[-1]
            # shielded: cancelling the awaiting code must not cancel the write itself
            await self.committed(asyncio.shield(write))
            with contextlib.suppress(ValueError):
                self.pending.remove(write)

    async def committed(self, write: Awaitable[bool]) -> None:
        """Await a write; a lost lease or a store error unwinds this attempt."""
        if not await self.stored(write):
            raise self.lease_lost()

    async def stored(self, call: Awaitable[T]) -> T:
        """Await a store call made for this run; a store error unwinds this attempt."""
        try:
            return await call
        except (StoreError, OSError) as error:
            raise self.abort(error) from error

    def _write(self, position: str, kind: str, name: str, ok: bool, value: bytes | None
               ) -> asyncio.Future[bool]:
        if self.unwinding is not None:
            raise self.unwinding
        step = StepRecord(position, kind, name, ok, value, time.time())
        return self.store.append(self.id, self.owner, step)

    def _settled(self, write: asyncio.Future[bool]) -> None:
        # A failed fire-and-forget write stops the attempt at once: later writes
        # of this run must not commit past the hole it leaves.
        if write.cancelled():
            self.unwind(Aborted(f"a write of workflow {self.id!r} was cancelled"))
            return
        error = write.exception()
        if error is not None:
            self.abort(error)
        elif not write.result():
            self.lease_lost()
        else:
            with contextlib.suppress(ValueError):
                self.pending.remove(write)

    # -- signals taken by branches that lost -------------------------------------------

    def taking_signal(self, position: str, take: asyncio.Future[Any]) -> None:
        """Note a signal take in flight at ``position`` (see :meth:`give_back_signals`)."""
        self.signal_positions.append(position)
        self.takes[position] = take
        take.add_done_callback(lambda _: self.takes.pop(position, None))

    async def give_back_signals(self, prefixes: list[str]) -> None:
        """Return the signals consumed under ``prefixes`` (branches whose outcome is dropped).

        Called before a primitive records its decision: a crash in between
        leaves the branches undecided, and they run again.
        """
        if not prefixes or not self.signal_positions:
            return
        keep: list[str] = []
        for position in self.signal_positions:
            if position.startswith(tuple(prefixes)):
                take = self.takes.get(position)
                if take is not None:  # let it land first, or the give-back could precede it
                    await _WAIT([take])
                await self.stored(self.store.untake_signal(self.id, self.owner, position))
                self.history.pop(position, None)
            else:
                keep.append(position)
        self.signal_positions = keep


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

    def branch(self, name: str = "") -> Scope:
        """A child scope for a new concurrent branch (a task made in workflow code).

        The branch's position is recorded (without waiting), so a replay that
        creates tasks at other positions, or does something else here, is
        detected instead of shifting every position after it.
        """
        run = self.run
        position = self.next_position()
        record = run.history.get(position)
        if record is None:
            run.commit_later(position, "branch", name, None)
        elif record.kind != "branch":
            raise run._diverged(position, _describe(record.kind, record.name),
                                _describe("branch", name))
        return Scope(run, position + ".")

    # -- flow._hooks.Recorder ----------------------------------------------------

    def fork(self, kind: str, count: int) -> _Fork:
        run = self.run
        position = self.next_position()
        if run.unwinding is not None:
            raise run.unwinding
        # A primitive that succeeded without a decision (parallel) left no record:
        # later records of the scope don't make a missing one a shift here.
        record = run.history.get(position)
        if record is not None and record.kind != kind:
            raise run._diverged(position, _describe(record.kind, record.name), kind)
        decision = run.outcome(record) if record is not None else UNDECIDED
        return _Fork(self.run, position, kind, decision, count)

    async def sleep(self, seconds: float) -> None:
        run = self.run
        position = self.next_position()
        record = run.replay(position, "sleep", "")
        if record is not None:
            wake_at = float(run.outcome(record))
        else:
            wake_at = run.clock.now() + seconds
            await run.commit(position, "sleep", "", wake_at)
        if wake_at - run.clock.now() > run.suspend_after and run.can_suspend(self):
            raise run.suspend(wake_at)
        await run.clock.sleep_until(wake_at)


@final
class _Fork:
    __slots__ = ("_count", "_kind", "_run", "decision", "position")

    def __init__(self, run: Run, position: str, kind: str, decision: Any, count: int) -> None:
        self._run = run
        self._kind = kind
        self._count = count
        self.position = position
        self.decision = decision

    def context(self, index: int) -> contextvars.Context:
        context = contextvars.copy_context()
        context.run(RECORDER.set, Scope(self._run, f"{self.position}.{index}."))
        return context

    async def decide(self, decision: Any) -> None:
        run = self._run
        await run.flush()
        await run.give_back_signals([f"{self.position}.{i}." for i in self._dropped(decision)])
        await run.commit(self.position, self._kind, "", decision)
        self.decision = decision

    def _dropped(self, decision: Any) -> list[int]:
        """The branches a replay under ``decision`` won't run again (their signals go back)."""
        if self._kind == "timeout":
            return [0] if decision is True else []
        if type(decision) is int:  # race, vote, select: the winner; parallel: the failure
            return [i for i in range(self._count) if i != decision]
        return []


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


def _reach(history: dict[str, StepRecord]) -> dict[str, int]:
    """For each scope prefix (``""``, ``"3."``, ...), the highest index recorded in it."""
    reach: dict[str, int] = {}
    for position in history:
        prefix = ""
        for part in position.split("."):
            index = int(part)
            if reach.get(prefix, 0) < index:
                reach[prefix] = index
            prefix = f"{prefix}{part}."
    return reach
