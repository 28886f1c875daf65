"""``race``: the first successful result; the losers are cancelled."""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from typing import Any, TypeVar, overload

from ._deterministic import SCHEDULER
from ._hooks import UNDECIDED
from ._kernel import SUCCESS, Branches, all_failed, awaitables, open_fork

__all__ = ["race"]

T = TypeVar("T")
T1 = TypeVar("T1")
T2 = TypeVar("T2")
T3 = TypeVar("T3")
T4 = TypeVar("T4")


@overload
async def race(a1: Awaitable[T1], a2: Awaitable[T2], /) -> T1 | T2: ...
@overload
async def race(a1: Awaitable[T1], a2: Awaitable[T2], a3: Awaitable[T3], /) -> T1 | T2 | T3: ...
@overload
async def race(
    a1: Awaitable[T1], a2: Awaitable[T2], a3: Awaitable[T3], a4: Awaitable[T4], /
) -> T1 | T2 | T3 | T4: ...
@overload
async def race(*aws: Awaitable[T]) -> T: ...
@overload
async def race(aws: Iterable[Awaitable[T]], /) -> T: ...
async def race(*aws: Any) -> Any:
    """Return the first *successful* result; cancel and await the others.

    A branch that fails doesn't end the race: the others go on, and only if
    every branch fails does ``race`` raise :class:`~legato.AllFailed` (an
    ``ExceptionGroup``) holding each failure in argument order. When several
    branches succeed in the same event-loop turn, the earliest argument wins.
    Compare :func:`select`, where the first arm to finish wins even if it
    failed, and :func:`timeout`, which gives a default instead of an error.

    Example::

        page = await legato.race(fetch(primary), fetch(backup))
        # Lumen's race with timeout: None if fetch takes more than 5 s
        page = await legato.race(fetch(url), legato.sleep(5, result=None))

    Args:
        *aws: awaitables, or a single iterable of them.

    Returns:
        The value of the first branch to succeed.

    Raises:
        AllFailed: every branch failed.
        ValueError: no awaitables were given.

    Inside a workflow the winner's index is recorded before the value is
    returned; a replay runs only the winner (its steps replay) and closes the
    other coroutines without running them. Under :func:`deterministic` the
    branches run one at a time in argument order until one succeeds.
    """
    items, _ = awaitables(aws, "race")
    if not items:
        raise ValueError("race() needs at least one awaitable")
    fork = open_fork("race", len(items))
    branches = Branches(items, fork, SUCCESS, 1 if SCHEDULER.get() is not None else 0)
    try:
        if fork is not None and fork.decision is not UNDECIDED:
            return (await branches.only(fork.decision)).result()
        branches.track_receives()
        branches.fill()
        tasks = branches.tasks
        while True:
            await branches.wait()
            winner = -1
            done = branches.done
            while done:
                i = done.popleft()
                task = tasks[i]
                assert task is not None
                if (winner < 0 or i < winner) and not task.cancelled() and task.exception() is None:
                    winner = i
            if winner >= 0:
                branches.used = winner
                branches.cancel()
                if fork is not None:
                    await fork.decide(winner)
                return tasks[winner].result()  # type: ignore[union-attr]
            fatal = branches.fatal()
            if fatal is not None:
                raise fatal
            if branches.finished():
                raise all_failed("race", branches)
    finally:
        await branches.aclose()
