"""Cron schedules: one run per tick across runtimes, overlap and catch-up policies,
pause/resume/delete, validation, and the crash between deciding a tick and creating its run.

Durable time is a ``VirtualClock(autojump=False)`` moved a minute at a time, so
each tick is handled before the test looks; both stores run every test.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

import legato
from legato.store import ScheduleRecord, ScheduleState, open_store
from polling import eventually
from schedule_workflows import MINUTE, T0, echo, gate, run_at, tick, tick_at


async def runs(rt: legato.Runtime, name: str) -> list[str]:
    """The ids of every run of workflow ``name``, oldest first."""
    return [w.id for w in await rt.list(name=name, limit=1000, order="oldest")]


async def handled(rt: legato.Runtime, schedule: str, k: int) -> None:
    """Wait until ``schedule`` has handled tick ``k``: its next tick is later, its run stored."""
    async def check() -> bool:
        (s,) = [s for s in await rt.schedules() if s.name == schedule]
        if s.next_tick.timestamp() <= tick_at(k):
            return False
        return s.last_run is None or await _exists(rt, s.last_run)
    await eventually(check)


async def _exists(rt: legato.Runtime, workflow_id: str) -> bool:
    try:
        await rt.get(workflow_id)
    except legato.WorkflowNotFound:
        return False
    return True


async def minute(rt: legato.Runtime, clock: legato.VirtualClock, schedule: str, k: int) -> None:
    """Move to tick ``k`` and wait until ``schedule`` handled it."""
    await clock.advance(tick_at(k) - clock.now())
    await handled(rt, schedule, k)


# -- one run per tick ------------------------------------------------------------------


async def test_each_tick_starts_one_run_that_knows_its_scheduled_time(db):
    clock = legato.VirtualClock(T0, autojump=False)
    async with legato.Runtime(db, clock=clock) as rt:
        info = await rt.schedule(tick, MINUTE, name="every")
        assert (info.name, info.workflow, info.cron, info.timezone) == (
            "every", "sched_tick", MINUTE, "UTC")
        assert (info.overlap, info.catch_up, info.paused) == ("skip", "latest", False)
        assert info.next_tick == datetime.fromtimestamp(tick_at(1), UTC)
        for k in (1, 2, 3):
            await minute(rt, clock, "every", k)
            await rt.handle(run_at("every", k)).result()
        assert await runs(rt, "sched_tick") == [run_at("every", k) for k in (1, 2, 3)]
        assert await rt.handle(run_at("every", 2)).result() == "2027-01-15T08:02:00+00:00"
        assert await rt.run(tick) is None  # not started by a schedule
        (s,) = await rt.schedules()
        assert s.last_run == run_at("every", 3)
        assert s.last_tick == datetime.fromtimestamp(tick_at(3), UTC)


async def test_two_runtimes_on_one_store_start_each_of_50_ticks_once(db):
    clock = legato.VirtualClock(T0, autojump=False)
    async with legato.Runtime(db, clock=clock) as a:
        await a.schedule(tick, MINUTE, name="fifty", overlap="allow")
        async with legato.Runtime(db, clock=clock):  # it reads the schedule as it opens
            for k in range(1, 51):  # each tick wakes both schedule loops at once
                await minute(a, clock, "fifty", k)
            expected = [run_at("fifty", k) for k in range(1, 51)]
            await eventually(lambda: _all_done(a, expected))
            assert sorted(await runs(a, "sched_tick")) == expected


async def _all_done(rt: legato.Runtime, ids: list[str]) -> bool:
    done = {w.id for w in await rt.list(name="sched_tick", status="succeeded", limit=1000)}
    return done >= set(ids)


async def test_a_tick_decided_but_never_created_is_created_by_the_next_worker(db):
    # What a worker killed between advancing the schedule and creating the run leaves.
    store = open_store(db)
    await store.open()
    try:
        data = b'{"args":[],"kwargs":{}}'
        record = ScheduleRecord("orphan", "sched_tick", MINUTE, "UTC", data, "skip", "latest",
                                False, ScheduleState(tick_at(1)))
        await store.put_schedule(record)
        decided = ScheduleState(tick_at(2), tick_at(1), run_at("orphan", 1))
        assert await store.advance_schedule("orphan", record.state, decided)
        assert not await store.advance_schedule("orphan", record.state, decided)  # once only
    finally:
        await store.close()
    clock = legato.VirtualClock(tick_at(1) + 30, autojump=False)
    async with legato.Runtime(db, clock=clock) as rt:
        await handled(rt, "orphan", 1)  # at start: no tick is due, the repair is
        result = await rt.handle(run_at("orphan", 1)).result(timeout=10)
        assert result == "2027-01-15T08:01:00+00:00"
        assert await runs(rt, "sched_tick") == [run_at("orphan", 1)]


# -- overlap ---------------------------------------------------------------------------


async def test_overlap_skip_drops_ticks_while_the_previous_run_goes_on(db):
    clock = legato.VirtualClock(T0, autojump=False)
    async with legato.Runtime(db, clock=clock) as rt:
        await rt.schedule(gate, MINUTE, name="skip")
        await minute(rt, clock, "skip", 1)
        await minute(rt, clock, "skip", 2)  # run 1 still going: skipped
        assert await runs(rt, "sched_gate") == [run_at("skip", 1)]
        await rt.signal(run_at("skip", 1), "go")
        await rt.handle(run_at("skip", 1)).result()
        await minute(rt, clock, "skip", 3)
        assert await runs(rt, "sched_gate") == [run_at("skip", 1), run_at("skip", 3)]


async def test_overlap_buffer_one_starts_one_held_tick_when_the_previous_run_ends(db):
    clock = legato.VirtualClock(T0, autojump=False)
    async with legato.Runtime(db, clock=clock) as rt:
        await rt.schedule(gate, MINUTE, name="buf", overlap="buffer_one")
        for k in (1, 2, 3):  # 2 is held back, 3 dropped (one waits at most)
            await minute(rt, clock, "buf", k)
        (s,) = await rt.schedules()
        assert s.buffered == datetime.fromtimestamp(tick_at(2), UTC)
        assert await runs(rt, "sched_gate") == [run_at("buf", 1)]
        await rt.signal(run_at("buf", 1), "go")
        await eventually(lambda: _started(rt, run_at("buf", 2)))  # at once, no tick needed
        assert await runs(rt, "sched_gate") == [run_at("buf", 1), run_at("buf", 2)]
        (s,) = await rt.schedules()
        assert (s.buffered, s.last_run) == (None, run_at("buf", 2))


async def _started(rt: legato.Runtime, workflow_id: str) -> bool:
    return workflow_id in await runs(rt, "sched_gate")


async def test_overlap_allow_runs_ticks_side_by_side(db):
    clock = legato.VirtualClock(T0, autojump=False)
    async with legato.Runtime(db, clock=clock) as rt:
        await rt.schedule(gate, MINUTE, name="all", overlap="allow")
        for k in (1, 2, 3):
            await minute(rt, clock, "all", k)
        assert await runs(rt, "sched_gate") == [run_at("all", k) for k in (1, 2, 3)]
        for k in (1, 2, 3):
            await rt.signal(run_at("all", k), "go")


# -- catch-up after downtime -----------------------------------------------------------


async def _down_for_ten_ticks(db: str, catch_up: str, overlap: str = "skip"
                              ) -> legato.Runtime:
    """Define a 5-minute schedule at T0 from a client; return a worker opened 50.5 minutes
    later (ticks 5, 10, ... 50 missed; tick 50 a minute and a half late)."""
    async with legato.Runtime(db, clock=legato.VirtualClock(T0), worker=False) as client:
        await client.schedule(tick, "*/5 * * * *", name="late", catch_up=catch_up,
                              overlap=overlap)
    return legato.Runtime(db, clock=legato.VirtualClock(tick_at(50) + 90, autojump=False))


async def test_catch_up_latest_runs_only_the_most_recent_missed_tick(db):
    async with await _down_for_ten_ticks(db, "latest") as rt:
        await handled(rt, "late", 50)
        assert await runs(rt, "sched_tick") == [run_at("late", 50)]
        (s,) = await rt.schedules()
        assert s.next_tick == datetime.fromtimestamp(tick_at(55), UTC)


async def test_catch_up_all_runs_every_missed_tick_in_order(db):
    async with await _down_for_ten_ticks(db, "all", overlap="allow") as rt:
        await handled(rt, "late", 50)
        assert await runs(rt, "sched_tick") == [run_at("late", k) for k in range(5, 51, 5)]
        assert await rt.handle(run_at("late", 20)).result() == "2027-01-15T08:20:00+00:00"


async def test_catch_up_none_drops_missed_ticks_and_runs_on_time_ones(db):
    rt = await _down_for_ten_ticks(db, "none")
    async with rt:
        await handled(rt, "late", 50)
        assert await runs(rt, "sched_tick") == []
        clock = rt.clock
        assert isinstance(clock, legato.VirtualClock)
        await minute(rt, clock, "late", 55)
        assert await runs(rt, "sched_tick") == [run_at("late", 55)]


# -- pause, resume, delete, redefine ---------------------------------------------------


async def test_paused_ticks_are_not_run_and_resume_goes_on_from_now(db):
    clock = legato.VirtualClock(T0, autojump=False)
    async with legato.Runtime(db, clock=clock) as rt:
        await rt.schedule(tick, MINUTE, name="p")
        await rt.pause_schedule("p")
        assert [s.paused for s in await rt.schedules()] == [True]
        await clock.advance(tick_at(3) + 30 - clock.now())
        await asyncio.sleep(0.05)
        assert await runs(rt, "sched_tick") == []
        await rt.resume_schedule("p")
        (s,) = await rt.schedules()
        assert not s.paused and s.next_tick == datetime.fromtimestamp(tick_at(4), UTC)
        await minute(rt, clock, "p", 4)
        assert await runs(rt, "sched_tick") == [run_at("p", 4)]
        await rt.delete_schedule("p")
        assert await rt.schedules() == []
        assert await runs(rt, "sched_tick") == [run_at("p", 4)]  # its runs stay


async def test_unknown_schedules_raise_schedule_not_found(db):
    async with legato.Runtime(db, worker=False) as rt:
        for call in (rt.pause_schedule, rt.resume_schedule, rt.delete_schedule):
            with pytest.raises(legato.ScheduleNotFound, match="no schedule named 'nope'"):
                await call("nope")


async def test_redefining_keeps_the_next_tick_unless_the_cron_changes(db):
    clock = legato.VirtualClock(T0 + 10, autojump=False)
    async with legato.Runtime(db, clock=clock, worker=False) as rt:
        first = await rt.schedule(tick, "*/5 * * * *", name="r")
        assert first.next_tick == datetime.fromtimestamp(T0 + 300, UTC)
        await clock.advance(400)
        same = await rt.schedule(tick, "*/5 * * * *", name="r", overlap="allow")
        assert (same.next_tick, same.overlap) == (first.next_tick, "allow")
        changed = await rt.schedule(tick, "0 * * * *", name="r", timezone="Europe/Riga")
        assert (changed.cron, changed.timezone) == ("0 * * * *", "Europe/Riga")
        assert changed.next_tick == datetime.fromtimestamp(T0 + 3600, UTC)


async def test_a_client_without_the_code_schedules_by_workflow_name(db):
    clock = legato.VirtualClock(T0, autojump=False)
    async with legato.Runtime(db, clock=clock, worker=False) as client:
        info = await client.schedule("sched_tick", MINUTE, name="byname")
        assert info.workflow == "sched_tick"
    async with legato.Runtime(db, clock=clock) as rt:
        await minute(rt, clock, "byname", 1)
        assert await rt.handle(run_at("byname", 1)).result() == "2027-01-15T08:01:00+00:00"


async def test_runs_get_the_schedules_arguments_and_the_workflows_queue(db):
    clock = legato.VirtualClock(T0, autojump=False)
    async with legato.Runtime(db, clock=clock, queues=[legato.Queue("sched_queue")]) as rt:
        info = await rt.schedule(echo, MINUTE, args=["ab"], kwargs={"times": 2})
        assert (info.name, info.args, info.kwargs) == ("sched_echo", ("ab",), {"times": 2})
        await minute(rt, clock, "sched_echo", 1)
        run = rt.handle(run_at("sched_echo", 1))
        assert await run.result() == ["abab", "2027-01-15T08:01:00+00:00"]
        assert (await rt.get(run.id)).queue == "sched_queue"


async def test_time_zones_read_the_cron_in_local_time(db):
    clock = legato.VirtualClock(T0, autojump=False)  # 08:00 UTC is 10:00 in Riga (winter)
    async with legato.Runtime(db, clock=clock, worker=False) as rt:
        info = await rt.schedule(tick, "30 11 * * *", name="riga", timezone="Europe/Riga")
        assert info.next_tick == datetime.fromtimestamp(T0 + 5400, UTC)


@pytest.mark.parametrize(("now", "next_tick"), [
    ("2027-03-27T12:00:00", "2027-03-28T01:00:00"),  # 03:30 is skipped: at 04:00 EEST
    ("2027-10-30T12:00:00", "2027-10-31T00:30:00"),  # 03:30 happens twice: the first
])
async def test_dst_follows_cron_rules(sqlite_db, now, next_tick):
    clock = legato.VirtualClock(datetime.fromisoformat(now).replace(tzinfo=UTC).timestamp())
    async with legato.Runtime(sqlite_db, clock=clock, worker=False) as rt:
        info = await rt.schedule(tick, "30 3 * * *", timezone="Europe/Riga")
        assert info.next_tick == datetime.fromisoformat(next_tick).replace(tzinfo=UTC)


# -- bad input ------------------------------------------------------------------------


@pytest.mark.parametrize(("option", "value", "message"), [
    ("cron", "*/5 * * *", r"cron='\*/5 \* \* \*' is not a valid cron expression"),
    ("cron", "61 * * * *", "is not a valid cron expression"),
    ("timezone", "Mars/Olympus", "timezone='Mars/Olympus' is not a known time zone"),
    ("overlap", "queue", "overlap='queue' is not one of 'skip', 'buffer_one', 'allow'"),
    ("catch_up", "some", "catch_up='some' is not one of 'latest', 'all', 'none'"),
    ("name", "a@b", "a schedule name must be a non-empty str without '@'"),
])
async def test_bad_options_are_refused_at_the_call_naming_the_option(sqlite_db, option,
                                                                     value, message):
    options: dict[str, str] = {"cron": MINUTE, option: value}
    async with legato.Runtime(sqlite_db, worker=False) as rt:
        with pytest.raises(ValueError, match=message):
            await rt.schedule(tick, **options)  # type: ignore[arg-type]
        assert await rt.schedules() == []


async def test_arguments_are_checked_against_the_workflow(sqlite_db):
    async with legato.Runtime(sqlite_db, worker=False) as rt:
        with pytest.raises(TypeError, match="can't start workflow 'sched_tick'"):
            await rt.schedule(tick, MINUTE, args=[1])
        with pytest.raises(TypeError, match=r"takes a @legato\.workflow or a workflow.s name"):
            await rt.schedule(print, MINUTE)  # type: ignore[arg-type]


def test_the_decorator_checks_its_cron_and_that_the_workflow_takes_no_arguments():
    with pytest.raises(ValueError, match="cron='every day' is not a valid cron expression"):
        @legato.workflow(name="sched_bad_cron", schedule="every day")
        async def bad_cron() -> None: ...

    with pytest.raises(TypeError, match="starts sched_needs_args without arguments"):
        @legato.workflow(name="sched_needs_args", schedule=MINUTE)
        async def needs_args(x: int) -> None: ...


def test_scheduled_time_outside_a_workflow_is_an_error():
    with pytest.raises(legato.LegatoError, match="outside a workflow"):
        legato.scheduled_time()
