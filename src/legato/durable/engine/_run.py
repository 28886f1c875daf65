"""The state of one workflow run: its history, and the one path its writes take.

Every durable operation takes the next position in its *scope* (see
``_scope``); replay looks the position up in the run's history, loaded in one
query when the run starts, and a fresh outcome is committed through
:meth:`Run.commit` before the workflow sees it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, TypeVar, cast, final

from ..._errors import NonDeterminismError, StoreError
from ..._serde import decode_error, encode_error
from ...store import StepRecord
from ._detached import detached
from ._unwind import Aborted, LeaseLost, Shutdown, Suspend, Unwind

if TYPE_CHECKING:
    from ..._clock import Clock
    from ..._serde import Serializer
    from ...store import Store
    from ._host import Host
    from ._scope import Scope

__all__ = ["Run", "describe"]

T = TypeVar("T")

_POLL = 0.5  # seconds; how often an in-memory wait looks for news from other processes
# Taken before a Runtime may refuse asyncio.wait's timing decisions in workflow code.
_WAIT = asyncio.wait


@final
class Run:
    """One execution of one workflow: its history and where it records.

    Every write goes through :meth:`commit` (awaited) or :meth:`commit_later`
    (for synchronous calls such as ``legato.now()``); :meth:`flush` makes the
    latter durable before any effect that could reveal their values.
    """

    __slots__ = ("branches", "cancel_reason", "cancel_requested", "clock", "ended", "failed",
                 "history", "host", "id", "name", "news", "nondeterminism", "owner", "pending",
                 "reach", "run_id", "serializer", "signal_positions", "store", "suspend_after",
                 "takes", "task", "unwinding")

    def __init__(
        self, *, id: str, name: str, owner: str, history: list[StepRecord], run_id: str = "",
        store: Store, serializer: Serializer, clock: Clock, host: Host,
        suspend_after: float = 5.0,
    ) -> None:
        self.id = id
        self.run_id = run_id  # which run of the workflow (a new one after continue-as-new)
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
        # set when a signal or a child's end may have arrived (the worker's wake-up bus)
        self.news = host.watch(id)
        self.cancel_requested = False
        self.cancel_reason = ""
        # Set once this attempt unwinds; kept even if user code swallows the exception.
        self.unwinding: Unwind | None = None
        self.pending: list[asyncio.Future[bool]] = []  # commit_later writes not yet awaited
        # the last recorded failure and its position: if it ends the run, rt.resume
        # forgets that record only (errors the workflow handled stay recorded)
        self.failed: tuple[BaseException, str] | None = None
        # (status, result, error) as this attempt's finish stored them, once it has
        self.ended: tuple[str, bytes | None, bytes | None] | None = None

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

    def lease_held(self) -> bool:
        """Whether this attempt surely holds its lease: a renewal was heard within a lease."""
        return self.host.holds(self.id, self.owner)

    async def confirm_lease(self) -> None:
        """Before an effect, when :meth:`lease_held` is false: renew, or unwind if taken over.

        A checkpoint's reply (or the worker's loop) may come back after the
        lease lapsed and another worker took the workflow over; the fence
        refuses this attempt's later writes, but an effect started now would
        happen twice. Yet a late reply alone (a claim that queued behind other
        writes, a renewal answered slowly) does not mean the workflow was taken:
        the store renews the lease only if this attempt still owns the row.
        """
        if not (await self.host.renew(self.id, self.owner) and self.lease_held()):
            raise self.lease_lost()

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

    def branch_ended(self, _: object) -> None:
        """A branch (task) of this run is done (a done-callback: see ``_task_factory``)."""
        self.branches -= 1

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
            raise self._diverged(position, describe(record.kind, record.name),
                                 describe(kind, name))
        return record

    def _check_fresh(self, position: str, kind: str, name: str, nested: bool) -> None:
        prefix, _, index = position.rpartition(".")
        scope = f"{prefix}." if prefix else ""
        if self.reach.get(scope, 0) > int(index):
            raise self._diverged(
                position, "no call (yet it goes on past this position: a task, a wait or "
                "code since changed took it)", describe(kind, name))
        if not nested and f"{position}." in self.reach:
            raise self._diverged(
                position, "a task or primitive (records under this position)",
                describe(kind, name))

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
        data = self.serializer.dumps(value, label=f"the result of {describe(kind, name)}")
        write = self._write(position, kind, name, True, data)
        # committed() and stored(), inline: every durable call comes by here
        try:
            written = await write
        except (StoreError, OSError) as error:
            raise self.abort(error) from error
        if not written:
            raise self.lease_lost()

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


def describe(kind: str, name: str) -> str:
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
