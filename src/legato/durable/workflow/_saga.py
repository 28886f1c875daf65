"""Sagas: undo finished work, in reverse order, when a later part fails."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from types import TracebackType
from typing import Any, final

from ..engine import current_scope
from ._step import Step

__all__ = ["Saga", "saga"]

log = logging.getLogger("legato.saga")


@final
class Saga:
    """Compensations registered so far; made by :func:`saga`."""

    __slots__ = ("_compensations",)

    def __init__(self) -> None:
        self._compensations: list[tuple[Step[..., Any], tuple[Any, ...], dict[str, Any]]] = []

    def compensate(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
        """Register ``fn(*args, **kwargs)`` to run if the saga's block fails.

        ``fn`` runs as a durable step: pass a ``@legato.step`` to give it a name
        and a retry policy; any other callable (an ``async def``, a ``def``, a
        ``lambda: cancel_flight(flight_id)``) becomes a step named after it, and
        an awaitable it returns is awaited inside that step.
        """
        step = fn if isinstance(fn, Step) else Step(
            _awaiting(fn), name=f"compensate:{getattr(fn, '__name__', 'callable')}",
            timeout=None)
        self._compensations.append((step, args, kwargs))

    async def __aenter__(self) -> Saga:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None or not _compensates(exc):
            return
        for step, args, kwargs in reversed(self._compensations):
            try:
                await step(*args, **kwargs)
            except Exception as failure:
                # Later compensations still run; the failure travels with the error.
                log.exception("compensation %s failed", step.name)
                exc.add_note(f"compensation {step.name!r} failed too: {failure!r}")


def _awaiting(fn: Callable[..., Any]) -> Callable[..., Any]:
    async def call(*args: Any, **kwargs: Any) -> Any:
        result = fn(*args, **kwargs)
        return await result if inspect.isawaitable(result) else result

    return call


def _compensates(exc: BaseException) -> bool:
    """Failures and cancellations compensate; unloading, shutdown and the like don't.

    A cancellation compensates wherever it comes from (``rt.cancel``, a
    deadline, a ``timeout`` or a lost ``race`` around the saga), unless the
    run is unwinding: then the workflow is not over, only leaving this process.
    """
    if isinstance(exc, Exception):
        return True
    if isinstance(exc, asyncio.CancelledError):
        scope = current_scope()
        return scope is None or scope.run.unwinding is None
    return False  # Suspend, LeaseLost, Shutdown, KeyboardInterrupt...


def saga() -> Saga:
    """A block whose registered compensations run, newest first, if it raises.

    Each compensation is a durable step: a crash while compensating resumes
    compensating and never repeats a finished compensation. The error then
    propagates. A workflow unloaded while it waits is not a failure: nothing
    is compensated then.

    Example::

        async with legato.saga() as saga:
            flight = await book_flight(trip)
            saga.compensate(cancel_flight, flight["id"])
            hotel = await book_hotel(trip)
            saga.compensate(cancel_hotel, hotel["id"])
            await book_car(trip)          # raises: hotel, then flight, are cancelled
    """
    return Saga()
