"""The seam through which a durable workflow reaches the primitives.

``flow`` never imports ``durable``. Instead, while workflow code runs, the
durable layer puts a :class:`Recorder` in :data:`RECORDER`. A primitive asks
for it with :func:`current_recorder`; with none, it is plain asyncio code.

Inside a workflow a primitive:

1. calls ``recorder.fork(kind, count)`` once, which takes the next position in
   the current scope and returns a :class:`Fork`;
2. runs branch ``i`` in ``fork.context(i)`` (``asyncio.create_task(coro,
   context=fork.context(i))``), so each branch gets its own position scope
   whatever order branches finish in;
3. if ``fork.decision`` is not :data:`UNDECIDED`, the decision was recorded by
   an earlier run: the primitive makes the same decision again without waiting
   on timing (e.g. a race runs only the recorded winner, whose steps replay);
4. otherwise, once decided, ``await fork.decide(value)`` records the decision
   (a small JSON value: an int, a list of ints, a bool) before acting on it.

Durable time goes through ``recorder.sleep(seconds)``, itself a recorded
operation, so a timeout inside a workflow survives a crash and follows the
runtime's clock (a ``VirtualClock`` makes it jump).
"""

from __future__ import annotations

import contextvars
from typing import Any, Final, Protocol

__all__ = ["RECORDER", "UNDECIDED", "Fork", "Recorder", "current_recorder"]


class _Undecided:
    def __repr__(self) -> str:
        return "UNDECIDED"


UNDECIDED: Final[Any] = _Undecided()


class Fork(Protocol):
    """One recorded fan-out: a primitive's branches and its decision."""

    @property
    def position(self) -> str:
        """The position the fork took, like ``"3"`` or ``"2.1.4"``."""
        ...

    @property
    def decision(self) -> Any:
        """The decision recorded by an earlier run, or :data:`UNDECIDED`."""
        ...

    def context(self, index: int) -> contextvars.Context:
        """A context whose position scope belongs to branch ``index``."""
        ...

    async def decide(self, decision: Any) -> None:
        """Durably record the decision; returns once it is committed."""
        ...


class Recorder(Protocol):
    """What the durable layer offers to primitives running inside a workflow."""

    def fork(self, kind: str, count: int) -> Fork:
        """Take the next position for a primitive of ``kind`` with ``count`` branches."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Durable sleep: the wake-up time is recorded; replays wait only what is left."""
        ...


RECORDER: Final[contextvars.ContextVar[Recorder | None]] = contextvars.ContextVar(
    "legato_recorder", default=None
)


def current_recorder() -> Recorder | None:
    """The recorder of the workflow this code runs in, or ``None`` outside workflows."""
    return RECORDER.get()
