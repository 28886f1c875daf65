"""The stores' Schedules part, on both stores: definitions, redefinition, and the
compare-and-set that lets exactly one worker handle a tick."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

import legato
from legato.store import ScheduleRecord, ScheduleState, Store, open_store
from polling import eventually
from schedule_workflows import MINUTE, T0, run_at, tick_at

_INPUT = b'{"args":[],"kwargs":{}}'


def schedule(name: str = "s", cron: str = MINUTE, timezone: str = "UTC",
             next_tick: float = tick_at(1), overlap: str = "skip") -> ScheduleRecord:
    return ScheduleRecord(name, "sched_tick", cron, timezone, _INPUT, overlap, "latest", False,
                          ScheduleState(next_tick))


@pytest.fixture
async def store(db: str) -> AsyncIterator[Store]:
    s = open_store(db)
    await s.open()
    yield s
    await s.close()


async def test_a_schedule_is_stored_listed_and_deleted(store):
    stored = await store.put_schedule(schedule("b"))
    assert (stored.name, stored.cron, stored.input, stored.paused) == ("b", MINUTE, _INPUT, False)
    assert stored.state == ScheduleState(tick_at(1))
    assert stored.created_at == stored.updated_at > 0
    await store.put_schedule(schedule("a"))
    assert [s.name for s in await store.schedules()] == ["a", "b"]
    assert await store.get_schedule("b") == stored
    assert await store.get_schedule("nope") is None
    assert await store.delete_schedule("a")
    assert not await store.delete_schedule("a")
    assert [s.name for s in await store.schedules()] == ["b"]


async def test_redefining_keeps_state_and_pause_unless_cron_or_zone_change(store):
    await store.put_schedule(schedule())
    moved = ScheduleState(tick_at(5), tick_at(4), run_at("s", 4), tick_at(3))
    assert await store.advance_schedule("s", ScheduleState(tick_at(1)), moved)
    assert await store.pause_schedule("s", True, 0.0)
    again = await store.put_schedule(schedule(next_tick=tick_at(9), overlap="allow"))
    assert (again.state, again.paused, again.overlap) == (moved, True, "allow")
    rezoned = await store.put_schedule(schedule(timezone="Europe/Riga", next_tick=tick_at(9)))
    assert rezoned.state == ScheduleState(tick_at(9), tick_at(4), run_at("s", 4), tick_at(3))
    assert await store.pause_schedule("s", False, tick_at(12))
    resumed = await store.get_schedule("s")
    assert resumed is not None and not resumed.paused
    assert resumed.state.next_tick == tick_at(12)
    assert not await store.pause_schedule("nope", True, 0.0)


async def test_of_racing_advances_from_one_state_exactly_one_wins(db, store):
    other = open_store(db)  # a second connection, as another process would have
    await other.open()
    try:
        await store.put_schedule(schedule())
        seen = ScheduleState(tick_at(1))
        wins = await asyncio.gather(*(
            s.advance_schedule("s", seen, ScheduleState(tick_at(2), tick_at(1), f"run-{i}"))
            for i, s in enumerate([store, other] * 5)))
        assert wins.count(True) == 1
        winner = wins.index(True)
        current = await other.get_schedule("s")
        assert current is not None and current.state.last_run == f"run-{winner}"
    finally:
        await other.close()


async def test_a_schedule_this_machine_cannot_read_does_not_stop_the_others(db, store, caplog):
    await store.put_schedule(schedule("broken", timezone="Mars/Olympus"))  # past validation
    await store.put_schedule(schedule("fine"))
    clock = legato.VirtualClock(T0, autojump=False)
    with caplog.at_level(logging.ERROR, logger="legato.schedules"):
        async with legato.Runtime(db, clock=clock) as rt:
            await clock.advance(60)
            await eventually(lambda: _finished(rt, run_at("fine", 1)))
    assert "schedule 'broken' can't be handled here" in caplog.text


async def _finished(rt: legato.Runtime, workflow_id: str) -> bool:
    try:
        return (await rt.get(workflow_id)).status == "succeeded"
    except legato.WorkflowNotFound:
        return False
