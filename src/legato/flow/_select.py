"""``select``: the first arm to finish, by name; the others are cancelled."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, final, overload

from legato._duration import Duration, to_seconds

from ._deterministic import SCHEDULER
from ._hooks import RECORDER, UNDECIDED, Fork
from ._kernel import ANY, Branches, decidable, discard_all, durable_timer

__all__ = ["Selected", "select"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

TIMEOUT = "timeout"


@final
@dataclass(frozen=True, slots=True)
class Selected(Generic[T_co]):
    """The arm :func:`select` took: its ``name`` and its ``value``.

    ``Selected("timeout", None)`` when ``select(timeout=...)`` ran out of time.
    """

    name: str
    value: T_co


@overload
async def select(*, timeout: None = ..., **arms: Awaitable[T]) -> Selected[T]: ...
@overload
async def select(*, timeout: Duration | None, **arms: Awaitable[T]) -> Selected[T | None]: ...
async def select(*, timeout: Duration | None = None, **arms: Awaitable[Any]) -> Selected[Any]:
    """Wait for the first arm to finish; return it as ``Selected(name, value)``.

    The other arms are cancelled and awaited. A channel's ``receive()`` is a
    fine arm: a cancelled receive never loses an item. Unlike :func:`race`,
    the first arm to *finish* wins even when it failed: its error is raised.
    When several arms finish in the same event-loop turn, the earliest wins.

    Example::

        match await legato.select(event1=ch_a.receive(), event2=ch_b.receive(), timeout=5):
            case legato.Selected("event1", e): handle1(e)
            case legato.Selected("event2", e): handle2(e)
            case legato.Selected("timeout"): print("timeout")

    Args:
        timeout: seconds, a ``timedelta`` or a string like ``"1m30s"``; when
            it runs out first, the result is ``Selected("timeout", None)``.
            (So ``timeout`` can't be an arm's name.)
        **arms: awaitables by name.

    Raises:
        Exception: the error of the first arm to finish, if it failed.
        ValueError: no arms and no timeout, or a bad duration.

    Inside a workflow the chosen arm is recorded (the timer is a durable
    sleep); a replay runs only that arm, or returns the timeout at once.
    Under :func:`deterministic` the first arm runs alone and is taken;
    ``timeout`` stays a real deadline.
    """
    names = list(arms)
    items: list[Any] = list(arms.values())
    n = len(items)
    seconds: float | None = None
    if timeout is not None:
        try:
            seconds = to_seconds(timeout)
        except BaseException:
            discard_all(items)
            raise
    if not n and seconds is None:
        raise ValueError("select() needs at least one arm, e.g. select(msg=channel.receive())")
    recorder = RECORDER.get()
    timed = seconds is not None
    fork = None if recorder is None else recorder.fork("select", n + timed)
    if fork is not None and fork.decision is not UNDECIDED:
        return await _replay(names, items, fork, timed)
    limit = 1 if SCHEDULER.get() is not None else 0
    if recorder is not None and seconds is not None:
        items.append(durable_timer(seconds))  # the durable timer, branch n
        limit += bool(limit)
    branches = Branches(items, fork, ANY, limit)
    timer: asyncio.TimerHandle | None = None
    try:
        if seconds is not None:
            if fork is None:
                timer = branches.loop.call_later(seconds, branches.expire)
            else:
                branches.start(n)
        branches.track_receives()
        branches.fill()
        await branches.wait()
        tasks = branches.tasks
        winner = min(branches.done) if branches.done else n
        if branches.expired:  # an arm done in this very turn still beats the timer
            winner = next((i for i in range(n) if (t := tasks[i]) is not None and t.done()), n)
        branches.cancel()
        if winner < n:
            branches.used = winner
            # no local for the task: a frame that raises its error must not hold it
            if fork is not None and decidable(tasks[winner]):  # type: ignore[arg-type]
                await fork.decide(winner)
            return Selected(names[winner], tasks[winner].result())  # type: ignore[union-attr]
        if fork is not None:
            tasks[n].result()  # type: ignore[union-attr]  # a failed durable timer: its error
            await fork.decide(n)
        return Selected(TIMEOUT, None)
    finally:
        if timer is not None:
            timer.cancel()
        await branches.aclose()


async def _replay(names: list[str], items: list[Any], fork: Fork, timed: bool) -> Selected[Any]:
    n = len(names)
    branches = Branches(items, fork, ANY)
    try:
        if timed and type(fork.decision) is int and fork.decision == n:
            branches.cancel()
            await branches.join()
            return Selected(TIMEOUT, None)
        task = await branches.only(fork.decision)
        return Selected(names[fork.decision], task.result())
    finally:
        await branches.aclose()
