"""asyncio's timing decisions, made safe in workflow code.

Which task finished first, or whether a timeout fired, depends on timing;
a replay would decide differently and take another path. While a Runtime
is open, ``asyncio.wait``, ``asyncio.wait_for``, ``asyncio.timeout``,
``asyncio.timeout_at`` and ``asyncio.as_completed`` check whether they run
in workflow code: outside it they are asyncio's own; inside it ``wait`` and
``wait_for`` record their decision (a durable timer, the set of tasks that
were done) and replay it, and the others, which can't be recorded, raise an
error naming the legato call to use instead. Only the ``asyncio`` module's
attributes are replaced: a name imported with ``from asyncio import ...``
before the Runtime opened keeps asyncio's own behaviour.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import Any

from ..._errors import LegatoError
from ...flow._timeout import timeout as legato_timeout
from ._operation import durable_deadline, operation
from ._scope import Scope, current_scope, detached
from ._task_factory import POSITIONS

__all__ = ["install", "uninstall"]

_ORIGINAL = {name: getattr(asyncio, name)
             for name in ("wait", "wait_for", "timeout", "timeout_at", "as_completed")}
_WAIT = _ORIGINAL["wait"]
_users = 0
_EXPIRED = object()


def install() -> None:
    """Replace asyncio's timing calls (counted: nested runtimes share them)."""
    global _users
    _users += 1
    if _users == 1:
        for name, guarded in _GUARDED.items():
            setattr(asyncio, name, guarded)


def uninstall() -> None:
    """Undo :func:`install`; asyncio's own calls return with the last user."""
    global _users
    _users -= 1
    if _users == 0:
        for name, original in _ORIGINAL.items():
            setattr(asyncio, name, original)


async def wait(fs: Iterable[asyncio.Future[Any]], *, timeout: float | None = None,
               return_when: str = asyncio.ALL_COMPLETED) -> tuple[set[Any], set[Any]]:
    """``asyncio.wait``; in workflow code, which tasks were done is recorded."""
    scope = current_scope()
    if scope is None or (timeout is None and return_when == asyncio.ALL_COMPLETED):
        done, pending = await _WAIT(fs, timeout=timeout, return_when=return_when)
        return done, pending
    futures = list(fs)
    if not futures:
        done, pending = await _WAIT(futures, timeout=timeout, return_when=return_when)
        return done, pending
    return await _recorded_wait(scope, futures, timeout, return_when)


async def _recorded_wait(scope: Scope, futures: list[asyncio.Future[Any]],
                         timeout: float | None, return_when: str
                         ) -> tuple[set[Any], set[Any]]:
    keys = [_position(f) for f in futures]
    run = scope.run

    async def decide(position: str) -> list[str]:
        deadline = await durable_deadline(run, position, timeout)
        timer = None if deadline is None else detached(run.clock.sleep_until(deadline))
        try:
            while not _satisfied(futures, return_when):
                pending: list[asyncio.Future[Any]] = [f for f in futures if not f.done()]
                await _WAIT([*pending, *([timer] if timer else [])],
                            return_when=asyncio.FIRST_COMPLETED)
                if timer is not None and timer.done():
                    break
        finally:
            if timer is not None:
                timer.cancel()
        return sorted(k for f, k in zip(futures, keys, strict=True) if f.done())

    done_keys = set(await operation(scope, "wait", "", decide, nested=True))
    done = {f for f, k in zip(futures, keys, strict=True) if k in done_keys}
    if done:  # a replay: the tasks that were done then finish now (their calls replay)
        await _WAIT(done)
    return done, {f for f in futures if f not in done}


def _position(future: asyncio.Future[Any]) -> str:
    position = POSITIONS.get(future)
    if position is None:
        raise LegatoError(
            f"asyncio.wait() with a timeout or return_when in a workflow can only wait for "
            f"tasks created in that workflow, and {future!r} is not one; use legato.select() "
            "or legato.race() instead")
    return position


def _satisfied(futures: list[asyncio.Future[Any]], return_when: str) -> bool:
    if return_when == asyncio.FIRST_COMPLETED:
        return any(f.done() for f in futures)
    if return_when == asyncio.FIRST_EXCEPTION and any(
            f.done() and not f.cancelled() and f.exception() is not None for f in futures):
        return True
    return all(f.done() for f in futures)


async def wait_for(fut: Awaitable[Any], timeout: float | None) -> Any:
    """``asyncio.wait_for``; in workflow code, whether it timed out is recorded."""
    if timeout is None or current_scope() is None:
        return await _ORIGINAL["wait_for"](fut, timeout)
    value = await legato_timeout(timeout, fut, default=_EXPIRED)
    if value is _EXPIRED:
        raise TimeoutError
    return value


def timeout(delay: float | None) -> Any:
    """``asyncio.timeout``; refused in workflow code (it can't be recorded)."""
    if delay is not None:
        _refuse("asyncio.timeout()", "legato.timeout(seconds, work(), default=...)")
    return _ORIGINAL["timeout"](delay)


def timeout_at(when: float | None) -> Any:
    """``asyncio.timeout_at``; refused in workflow code (it can't be recorded)."""
    if when is not None:
        _refuse("asyncio.timeout_at()", "legato.timeout(seconds, work(), default=...)")
    return _ORIGINAL["timeout_at"](when)


def as_completed(fs: Iterable[Awaitable[Any]], *, timeout: float | None = None) -> Any:
    """``asyncio.as_completed``; refused in workflow code (its order can't be recorded)."""
    _refuse("asyncio.as_completed()",
            "legato.parallel(...) or asyncio.gather(...), or a legato.Channel the tasks send to")
    return _ORIGINAL["as_completed"](fs, timeout=timeout)


def _refuse(what: str, instead: str) -> None:
    if current_scope() is not None:
        raise LegatoError(
            f"{what} decides by timing, which a workflow's replay can't reproduce, so it is "
            f"refused in workflow code; use {instead} (recorded), or move the timed work "
            "into a @legato.step")


_GUARDED: dict[str, Any] = {"wait": wait, "wait_for": wait_for, "timeout": timeout,
                            "timeout_at": timeout_at, "as_completed": as_completed}
