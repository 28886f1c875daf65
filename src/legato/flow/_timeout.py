"""``timeout``: the value, or a default when time runs out (the work is cancelled)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine
from types import TracebackType
from typing import Any, Final, TypeVar, final, overload

from legato._duration import Duration, to_seconds

from ._hooks import RECORDER, UNDECIDED, Recorder
from ._kernel import ANY, Branches, decidable, discard, durable_timer, start

__all__ = ["TimeoutScope", "timeout"]

T = TypeVar("T")
D = TypeVar("D")

_MISSING: Final[Any] = object()


@overload
def timeout(seconds: Duration, aw: Awaitable[T], /) -> Coroutine[Any, Any, T | None]: ...
@overload
def timeout(seconds: Duration, aw: Awaitable[T], /, default: D) -> Coroutine[Any, Any, T | D]: ...
@overload
def timeout(seconds: Duration, /) -> TimeoutScope: ...
def timeout(seconds: Duration, aw: Any = _MISSING, /, default: Any = None) -> Any:
    """Await ``aw`` for at most ``seconds``; on time-out cancel it and return ``default``.

    Unlike :func:`asyncio.wait_for`, running out of time is not an error: it
    gives ``default`` (``None`` unless given), like Lumen's ``timeout``.
    Errors raised by ``aw`` itself propagate unchanged. Note that Lumen counts
    milliseconds; legato durations are seconds, ``timedelta`` or strings.

    Example::

        data = await legato.timeout(5, fetch(url))             # None after 5 s
        data = await legato.timeout("2m", fetch(url), default=b"")

        async with legato.timeout(5) as scope:                 # the block form
            data = await fetch(url)
        if scope.expired:
            ...

    With only ``seconds`` it returns a :class:`TimeoutScope` for ``async with``:
    when time runs out the block is cancelled and execution continues after
    it, with ``scope.expired`` true (trio's ``move_on_after``). The block form
    can't be replayed, so it is for plain asyncio code only; inside a
    workflow, use ``await timeout(seconds, aw)``.

    Args:
        seconds: seconds, a ``timedelta`` or a string like ``"1h30m"``.
        aw: the awaitable to bound.
        default: the value when time runs out.

    Raises:
        ValueError: a negative duration or a string that isn't one.

    Inside a workflow the timer is a durable sleep and whether it fired is
    recorded; a replay returns ``default`` at once, or awaits ``aw`` with no
    timer. Timeouts are real deadlines under :func:`deterministic` too.
    """
    try:
        limit = to_seconds(seconds)
    except BaseException:
        if aw is not _MISSING:
            discard(aw)
        raise
    if aw is _MISSING:
        return TimeoutScope(limit)
    return _timeout(limit, aw, default)


async def _timeout(seconds: float, aw: Awaitable[Any], default: Any) -> Any:
    recorder = RECORDER.get()
    if recorder is not None:
        return await _durable(recorder, seconds, aw, default)
    deadline = asyncio.timeout(seconds)
    try:
        async with deadline:
            return await aw
    except TimeoutError:
        if deadline.expired():
            return default
        raise


async def _durable(recorder: Recorder, seconds: float, aw: Awaitable[Any], default: Any) -> Any:
    fork = recorder.fork("timeout", 2)
    decision = fork.decision
    if decision is False:  # replay: it finished in time, so no timer
        return await start(asyncio.get_running_loop(), aw, fork.context(0))
    if decision is True:  # replay: it timed out
        branches = Branches([aw], fork, ANY)
        try:
            branches.cancel()
            await branches.join()
        finally:
            await branches.aclose()
        return default
    if decision is not UNDECIDED:
        discard(aw)
        raise ValueError(
            f"the recorded decision {decision!r} doesn't fit timeout(); the workflow's code "
            "changed since it was recorded (guard the change with legato.patched)"
        )
    branches = Branches([aw, durable_timer(seconds)], fork, ANY)
    try:
        branches.fill()
        await branches.wait()
        # no locals for the tasks: a frame that raises their error must not hold them
        tasks = branches.tasks
        fired = not tasks[0].done()  # type: ignore[union-attr]
        branches.cancel()
        if fired:
            tasks[1].result()  # type: ignore[union-attr]  # a failed durable timer raises its error
            await fork.decide(True)
            return default
        if decidable(tasks[0]):  # type: ignore[arg-type]
            await fork.decide(False)
        return tasks[0].result()  # type: ignore[union-attr]
    finally:
        await branches.aclose()


@final
class TimeoutScope:
    """``async with legato.timeout(seconds) as scope:`` — leave the block when time runs out.

    The block is cancelled at the deadline and execution continues after it;
    ``scope.expired`` says whether that happened. Other errors propagate.
    Plain asyncio only (raises ``RuntimeError`` inside a workflow: use the
    ``await timeout(seconds, aw)`` form there).
    """

    __slots__ = ("_deadline", "expired", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._deadline: asyncio.Timeout | None = None

    async def __aenter__(self) -> TimeoutScope:
        if RECORDER.get() is not None:
            raise RuntimeError(
                "'async with legato.timeout(...)' can't be replayed inside a workflow; "
                "write 'await legato.timeout(seconds, work())' there instead"
            )
        if self._deadline is not None:
            raise RuntimeError("a timeout scope can't be entered twice; make a new one")
        self._deadline = asyncio.timeout(self.seconds)
        await self._deadline.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        deadline = self._deadline
        assert deadline is not None
        try:
            await deadline.__aexit__(exc_type, exc, tb)
        except TimeoutError:
            if deadline.expired():
                self.expired = True
                return True
            raise
        self.expired = deadline.expired()
        return False

    def __repr__(self) -> str:
        return f"<TimeoutScope seconds={self.seconds} expired={self.expired}>"
