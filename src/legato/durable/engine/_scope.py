"""Positions: each branch of a workflow numbers its durable operations in a scope.

The workflow body has the root scope (positions ``1``, ``2``, ...); each
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

import contextvars
from typing import Any, TypeVar, final

from ...flow._hooks import RECORDER, UNDECIDED
from ._detached import detached
from ._run import Run, describe

__all__ = ["Scope", "current_scope", "detached"]

T = TypeVar("T")


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
            raise run._diverged(position, describe(record.kind, record.name),
                                describe("branch", name))
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
            raise run._diverged(position, describe(record.kind, record.name), kind)
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


def current_scope() -> Scope | None:
    """The scope of the workflow code running now, or ``None``."""
    scope = RECORDER.get()
    return scope if isinstance(scope, Scope) else None
