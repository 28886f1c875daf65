"""Deterministic scheduling: deferred futures that run one at a time, in FIFO order.

Inside ``with deterministic():`` (or ``async with``), and in a workflow declared
``@legato.workflow(deterministic=True)``:

- :func:`~legato.flow.spawn` creates its task at once (so it takes its place,
  and in a workflow its position scope, in spawn order) but the task waits at a
  gate: it runs only when some future of the block is first awaited, and then
  every future spawned before it runs first, one at a time, in FIFO order;
- ``parallel``, ``race``, ``vote`` and ``select`` run their branches one at a
  time in argument order, as if each branch took no time: ``race`` returns the
  first branch (in argument order) that succeeds, ``select`` the first arm,
  ``vote`` stops at the quorum counted in argument order;
- time still passes: ``timeout(...)`` and ``select(timeout=...)`` are real
  deadlines (durable ones inside a workflow), so a hung branch can't hang the
  program. ``race(work(), sleep(5))`` on the other hand always returns
  ``work()``'s value, because ``work()`` comes first.

Futures still gated when the block ends run then: ``async with`` awaits them
(in FIFO order) before leaving the block, plain ``with`` starts them in a
background task; if the block ends with an exception they are cancelled
instead, without ever starting.

The durable layer enables the mode for a whole workflow with the same context
manager (``async with deterministic(): ...`` around the workflow body) and can
ask :func:`enabled`.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, final

if TYPE_CHECKING:
    from ._future import Future

__all__ = ["Scheduler", "deterministic", "enabled"]


@final
class Scheduler:
    """The FIFO queue of gated futures of one ``deterministic()`` block."""

    __slots__ = ("queue",)

    def __init__(self) -> None:
        self.queue: deque[Future[Any]] = deque()

    async def run_until(self, target: Future[Any]) -> None:
        """Open gates in FIFO order, one task at a time, until ``target``'s is open."""
        gate = target._gate
        assert gate is not None
        queue = self.queue
        while not gate.done() and queue:
            future = queue.popleft()
            if not _open(future):
                continue
            if future is not target:
                # Wait for it to finish; never cancel it, never raise its outcome.
                await asyncio.wait((future._task,))

    async def drain(self) -> None:
        """Run every queued future, one at a time, in FIFO order."""
        queue = self.queue
        while queue:
            future = queue.popleft()
            if _open(future):
                await asyncio.wait((future._task,))

    def cancel_all(self) -> list[asyncio.Future[Any]]:
        """Cancel every queued future (none has started); return their tasks."""
        tasks = []
        while self.queue:
            future = self.queue.popleft()
            if future._task.cancel():
                tasks.append(future._task)
        return tasks


def _open(future: Future[Any]) -> bool:
    gate = future._gate
    if gate is None or gate.done():
        return False
    gate.set_result(None)
    return True


SCHEDULER: Final[contextvars.ContextVar[Scheduler | None]] = contextvars.ContextVar(
    "legato_deterministic", default=None
)

_background: set[asyncio.Task[None]] = set()


def enabled() -> bool:
    """Whether deterministic scheduling is on in the current context."""
    return SCHEDULER.get() is not None


@final
class _Deterministic:
    __slots__ = ("_scheduler", "_token")

    def __init__(self) -> None:
        self._scheduler: Scheduler | None = None
        self._token: contextvars.Token[Scheduler | None] | None = None

    def _enter(self) -> None:
        if self._scheduler is not None:
            raise RuntimeError("a deterministic() block can't be entered twice; make a new one")
        outer = SCHEDULER.get()
        if outer is None:
            self._scheduler = Scheduler()
            self._token = SCHEDULER.set(self._scheduler)
        else:  # nested: the outer block owns the queue
            self._scheduler = outer

    def _leave(self) -> Scheduler | None:
        """Reset the flag; return the scheduler when this block owned it."""
        token, self._token = self._token, None
        if token is None:
            return None
        SCHEDULER.reset(token)
        return self._scheduler

    def __enter__(self) -> None:
        self._enter()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        scheduler = self._leave()
        if scheduler is None or not scheduler.queue:
            return
        if exc_type is not None:
            scheduler.cancel_all()
            return
        task = asyncio.get_running_loop().create_task(scheduler.drain())
        _background.add(task)
        task.add_done_callback(_background.discard)

    async def __aenter__(self) -> None:
        self._enter()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        scheduler = self._leave()
        if scheduler is None or not scheduler.queue:
            return
        if exc_type is not None:
            tasks = scheduler.cancel_all()
            if tasks:
                await asyncio.wait(tasks)
            return
        await scheduler.drain()


def deterministic() -> _Deterministic:
    """Run spawned futures one at a time in FIFO order, and resolve combinators in argument order.

    Use it where results must not depend on timing: tests, simulations, and
    (through ``@legato.workflow(deterministic=True)``) workflows. Works with
    ``with`` and ``async with``; ``async with`` also runs the futures still
    waiting when the block ends before leaving it. Nested blocks share the
    outermost block's queue. Timeouts stay real deadlines.

    Example::

        async with legato.deterministic():
            a = legato.spawn(task_a())      # queued, not started
            b = legato.spawn(task_b())      # queued
            assert [await b, await a] == [...]  # runs task_a, then task_b

    Returns:
        A context manager; each ``deterministic()`` call makes a fresh one.
    """
    return _Deterministic()
