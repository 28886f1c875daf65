"""Positions and replay: the state of one workflow run and its scopes.

Every durable operation takes the next position in its *scope*. The
workflow body has the root scope (positions ``1``, ``2``, ...); each
concurrent branch gets a child scope named after the position it took in its
parent (``3.1``, ``3.2``, ...), assigned when the branch is created, so
positions do not depend on which branch finishes first.

A :class:`Scope` is what ``flow``'s ``RECORDER`` context variable holds while
workflow code runs: it implements ``flow._hooks.Recorder``.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from typing import TYPE_CHECKING, Any, cast, final

from .._errors import NonDeterminismError
from .._serde import decode_error, encode_error
from ..flow._hooks import RECORDER, UNDECIDED
from ..store import StepRecord

if TYPE_CHECKING:
    from .._clock import Clock
    from .._serde import Serializer
    from ..store import Store

__all__ = ["LeaseLost", "Run", "Scope", "current_scope"]


class LeaseLost(BaseException):
    """Unwinds a workflow whose lease another worker took over.

    A ``BaseException`` so that user ``except Exception`` blocks don't catch it:
    nothing more may be recorded by this process for that workflow.
    """


@final
class Run:
    """One execution of one workflow: its history and where it records."""

    __slots__ = ("clock", "history", "id", "name", "nondeterminism", "owner", "serializer",
                 "store")

    def __init__(
        self, *, id: str, name: str, owner: str, history: list[StepRecord],
        store: Store, serializer: Serializer, clock: Clock,
    ) -> None:
        self.id = id
        self.name = name
        self.owner = owner
        self.history = {step.position: step for step in history}
        self.store = store
        self.serializer = serializer
        self.clock = clock
        # Kept even if user code swallows the error: the run fails with it anyway.
        self.nondeterminism: NonDeterminismError | None = None

    def replay(self, position: str, kind: str, name: str) -> StepRecord | None:
        """The record at ``position``, checked against what the code does now."""
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

    def record_nowait(self, position: str, kind: str, value: Any) -> None:
        """Record without waiting; later writes commit after this one."""
        data = self.serializer.dumps(value, label=f"legato.{kind}()")
        self.write(position, kind, "", True, data).add_done_callback(_consume)

    async def _committed(self, write: asyncio.Future[bool]) -> None:
        if not await write:
            raise LeaseLost(f"workflow {self.id!r} is now owned by another worker")


@final
class Scope:
    """A position counter for one branch of a workflow (a ``flow`` Recorder)."""

    __slots__ = ("counter", "prefix", "run")

    def __init__(self, run: Run, prefix: str = "") -> None:
        self.run = run
        self.prefix = prefix
        self.counter = 0

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
