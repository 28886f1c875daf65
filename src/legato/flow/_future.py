"""``Future``: the handle :func:`~legato.flow.spawn` returns, and its four states."""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar, final

if TYPE_CHECKING:
    from ._deterministic import Scheduler

__all__ = ["Cancelled", "Completed", "Failed", "Future", "Pending", "State"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


@final
@dataclass(frozen=True, slots=True)
class Pending:
    """The future has not finished yet (it may not have started, in deterministic mode)."""


@final
@dataclass(frozen=True, slots=True)
class Completed(Generic[T_co]):
    """The future finished with ``value``."""

    value: T_co


@final
@dataclass(frozen=True, slots=True)
class Failed:
    """The future raised ``error``."""

    error: BaseException


@final
@dataclass(frozen=True, slots=True)
class Cancelled:
    """The future was cancelled before it finished."""


State: TypeAlias = Pending | Completed[T] | Failed | Cancelled

_PENDING: Pending = Pending()
_CANCELLED: Cancelled = Cancelled()


@final
class Future(Generic[T]):
    """A running (or, in deterministic mode, queued) piece of work; ``await`` it for its value.

    Made by :func:`~legato.flow.spawn`, not directly. Awaiting a future behaves
    like awaiting an :class:`asyncio.Task`: it gives the value or raises the
    error, and cancelling the task that awaits it cancels the future too (wrap
    it in :func:`asyncio.shield` to prevent that). A future can be awaited many
    times and by many tasks.

    Example::

        f = legato.spawn(fetch(url))
        match f.state:
            case legato.Pending():      print("still running")
            case legato.Completed(v):   print("got", v)
            case legato.Failed(err):    print("failed:", err)
            case legato.Cancelled():    print("cancelled")
        page = await f
    """

    __slots__ = ("__weakref__", "_gate", "_scheduler", "_task")

    def __init__(
        self,
        task: asyncio.Future[T],
        gate: asyncio.Future[None] | None = None,
        scheduler: Scheduler | None = None,
    ) -> None:
        self._task = task
        self._gate = gate
        self._scheduler = scheduler

    @property
    def state(self) -> State[T]:
        """``Pending()``, ``Completed(value)``, ``Failed(error)`` or ``Cancelled()``.

        Reading a ``Failed`` state counts as handling the error: asyncio will
        not log "exception was never retrieved" for it.
        """
        task = self._task
        if not task.done():
            return _PENDING
        if task.cancelled():
            return _CANCELLED
        error = task.exception()
        if error is not None:
            return Failed(error)
        return Completed(task.result())

    def done(self) -> bool:
        """Whether the future finished (completed, failed or cancelled)."""
        return self._task.done()

    def cancel(self, msg: Any | None = None) -> bool:
        """Ask the work to stop; ``False`` if it had already finished.

        A future that is still queued in deterministic mode is cancelled
        without ever starting.
        """
        return self._task.cancel(msg)

    def result(self) -> T:
        """The value of a finished future, without waiting.

        Raises:
            BaseException: the future's own error if it failed.
            asyncio.CancelledError: if it was cancelled.
            asyncio.InvalidStateError: if it has not finished yet; ``await`` it instead.
        """
        return self._task.result()

    def __await__(self) -> Generator[Any, None, T]:
        gate = self._gate
        if gate is not None and not gate.done():
            return self._run_deferred().__await__()
        return self._task.__await__()

    async def _run_deferred(self) -> T:
        assert self._scheduler is not None
        await self._scheduler.run_until(self)
        return await self._task

    def __repr__(self) -> str:
        return f"<legato.Future {self.state!r}>"
