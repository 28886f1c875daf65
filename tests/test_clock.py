"""VirtualClock on its own; durable sleeps under it are in test_durable_sleep.py."""

from __future__ import annotations

import asyncio
import time

import pytest

import legato


async def test_autojump_reaches_the_earliest_timer_first():
    clock = legato.VirtualClock(start=1000.0)
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, at: float) -> None:
        await clock.sleep_until(at)
        woke.append((name, clock.now()))

    started = time.monotonic()
    await asyncio.gather(sleeper("week", 1000 + 7 * 86400), sleeper("hour", 1000 + 3600))
    assert woke == [("hour", 1000 + 3600), ("week", 1000 + 7 * 86400)]
    assert time.monotonic() - started < 1


async def test_manual_clock_moves_only_when_advanced():
    clock = legato.VirtualClock(start=0.0, autojump=False)
    task = asyncio.create_task(clock.sleep_until(60))
    await asyncio.sleep(0.01)
    assert not task.done() and clock.now() == 0.0
    await clock.advance(59)
    assert not task.done()
    await clock.advance(1)
    assert task.done() and clock.now() == 60.0
    with pytest.raises(ValueError, match="can't go back"):
        await clock.advance(-1)


async def test_autojump_waits_while_the_loop_is_busy():
    clock = legato.VirtualClock(start=0.0)
    order: list[str] = []

    async def busy() -> None:
        for _ in range(50):
            await asyncio.sleep(0)  # runnable all along: time must not jump yet
        order.append(f"busy done at {clock.now()}")

    async def sleeper() -> None:
        await clock.sleep_until(10)
        order.append(f"slept until {clock.now()}")

    await asyncio.gather(sleeper(), busy())
    assert order == ["busy done at 0.0", "slept until 10.0"]


async def test_a_cancelled_sleeper_does_not_move_time():
    clock = legato.VirtualClock(start=0.0)
    task = asyncio.create_task(clock.sleep_until(100))
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.sleep(0)
    await clock.sleep_until(5)
    assert clock.now() == 5.0
