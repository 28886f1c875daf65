"""The orchestration primitives inside durable workflows.

For race, vote, select, timeout, parallel and spawn:

(a) the result inside a workflow is the result of the same call in plain asyncio;
(b) after a restart right after the decision (the next step blocks in the first
    runtime, which is then left: its lease is released), the replay takes the
    SAME decision even though the branch timings are reversed for the second
    run (``DELAY`` is flipped between the runs), and no finished or losing
    branch's step body runs again;
(c) ``rt.get(id).steps`` shows the decision records at the expected positions
    (a primitive takes one position ``P``; branch ``i`` records under ``P.i.``),
    and the recorded value is the documented decision.

Branch timing comes from ``DELAY``: a number of seconds, or ``FOREVER`` for a
branch that never finishes unless it is cancelled. Flipping a winner to
``FOREVER`` for the second run means: if the replay really ran the branch
again instead of replaying it, the workflow would hang (and the test fail).
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import legato

calls: Counter[str] = Counter()  # how often each step body really started
DELAY: dict[str, float] = {}  # seconds each `timed` branch takes (FOREVER: never finishes)
VALUE: dict[str, Any] = {}  # what each `timed` branch returns (default: its name)
FAIL: dict[str, bool] = {}  # whether `failing` raises
FOREVER = math.inf

entered: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
opened: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)

DECISION_KINDS = ("race", "vote", "select", "timeout", "parallel")


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls.clear()
    DELAY.clear()
    VALUE.clear()
    FAIL.clear()
    entered.clear()
    opened.clear()


# -- steps ---------------------------------------------------------------------------


@legato.step
async def timed(name: str) -> Any:
    """A branch whose duration comes from ``DELAY`` (read when the body runs)."""
    calls[name] += 1
    delay = DELAY.get(name, 0.0)
    if delay == FOREVER:
        await asyncio.Event().wait()
    await asyncio.sleep(delay)
    return VALUE.get(name, name)


@legato.step
async def failing(name: str) -> str:
    calls[name] += 1
    await asyncio.sleep(0)
    if FAIL.get(name, True):
        raise ValueError(f"{name} failed")
    return name


@legato.step
async def gate(name: str) -> str:
    """Blocks until the test opens it; the point where the first runtime is left."""
    calls[f"gate:{name}"] += 1
    entered[name].set()
    await opened[name].wait()
    return name


running = {"now": 0, "peak": 0}


@legato.step
async def limited(i: int) -> int:
    calls[f"limited-{i}"] += 1
    running["now"] += 1
    running["peak"] = max(running["peak"], running["now"])
    try:
        await asyncio.sleep(0.002 * (5 - i))
    finally:
        running["now"] -= 1
    return i * i


@legato.step
async def jitter(name: str) -> str:
    await asyncio.sleep(random.uniform(0, 0.003))
    return name


# -- helpers -------------------------------------------------------------------------


async def decisions(rt: legato.Runtime, workflow_id: str) -> dict[str, tuple[str, Any]]:
    """Every recorded primitive decision: position -> (kind, decision)."""
    return {
        r.position: (r.kind, rt.serializer.loads(r.value))
        for r in await rt.store.history(workflow_id)
        if r.kind in DECISION_KINDS
    }


def positions(info: legato.WorkflowInfo, *kinds: str) -> list[tuple[str, str, str]]:
    return [(s.position, s.kind, s.name) for s in info.steps if not kinds or s.kind in kinds]


async def run_until_gate(
    db: str, wf: Any, *args: Any, id: str, clock: legato.VirtualClock | None = None,
    after_start: Callable[[legato.Runtime], Awaitable[None]] | None = None,
) -> tuple[legato.WorkflowInfo, dict[str, tuple[str, Any]]]:
    """First runtime: start ``wf``, wait until it blocks in ``gate(id)``, leave the runtime."""
    async with legato.Runtime(db, clock=clock) as rt:
        await rt.start(wf, *args, id=id)
        if after_start is not None:
            await after_start(rt)
        await asyncio.wait_for(entered[id].wait(), 5)
        info = await rt.get(id)
        assert info.status == "running"
        return info, await decisions(rt, id)


async def finish_after_restart(
    db: str, id: str, clock: legato.VirtualClock | None = None,
    before: Callable[[legato.Runtime], Awaitable[None]] | None = None,
) -> tuple[Any, legato.WorkflowInfo, dict[str, tuple[str, Any]]]:
    """Second runtime on the same file: open the gate and let the replay finish the run."""
    opened[id].set()
    async with legato.Runtime(db, clock=clock) as rt:
        if before is not None:
            await before(rt)
        result = await rt.handle(id).result(timeout=5)
        return result, await rt.get(id), await decisions(rt, id)


# -- race ----------------------------------------------------------------------------


@legato.workflow(name="flow_race")
async def race_wf() -> str:
    winner: str = await legato.race(timed("a"), timed("b"))
    await gate(legato.workflow_id())
    return winner


async def test_race_in_a_workflow_replays_the_recorded_winner(db):
    DELAY.update(a=0.0, b=FOREVER)
    plain = await legato.race(timed("a"), timed("b"))
    calls.clear()

    info, decided = await run_until_gate(db, race_wf, id="race")
    assert decided == {"1": ("race", 0)}  # the winner's index
    assert positions(info) == [("1", "race", ""), ("1.0.1", "step", "timed")]
    assert calls == {"a": 1, "b": 1, "gate:race": 1}  # b started, then was cancelled

    DELAY.update(a=FOREVER, b=0.0)  # reversed: b would win now
    result, info, decided = await finish_after_restart(db, "race")
    assert result == plain == "a"
    assert decided == {"1": ("race", 0)}
    assert positions(info) == [
        ("1", "race", ""), ("1.0.1", "step", "timed"), ("2", "step", "gate")]
    assert calls == {"a": 1, "b": 1, "gate:race": 2}  # only the blocked gate ran again


@legato.workflow(name="flow_race_all_fail")
async def race_all_fail_wf() -> list[str]:
    try:
        await legato.race(failing("x"), failing("y"))
    except legato.AllFailed as group:
        return [str(e) for e in group.exceptions]
    return []


async def test_race_where_every_branch_fails_records_no_decision(db):
    with pytest.raises(legato.AllFailed):
        await legato.race(failing("x"), failing("y"))
    async with legato.Runtime(db) as rt:
        assert await rt.run(race_all_fail_wf, id="raf") == ["x failed", "y failed"]
        assert await decisions(rt, "raf") == {}
        assert positions(await rt.get("raf")) == [
            ("1.0.1", "step", "failing"), ("1.1.1", "step", "failing")]


# -- vote ----------------------------------------------------------------------------


def lower(answer: str) -> str:
    return answer.lower()


@legato.workflow(name="flow_vote")
async def vote_wf() -> str:
    verdict: str = await legato.vote(
        timed("j0"), timed("j1"), timed("j2"), timed("j3"), key=lower, quorum=2)
    await gate(legato.workflow_id())
    return verdict


async def test_vote_with_key_and_quorum_replays_the_recorded_winner(db):
    VALUE.update(j0="no", j1="Yes", j2="YES", j3="no")
    DELAY.update(j0=0.0, j1=0.0, j2=0.0, j3=FOREVER)
    plain = await legato.vote(
        timed("j0"), timed("j1"), timed("j2"), timed("j3"), key=lower, quorum=2)
    calls.clear()

    info, decided = await run_until_gate(db, vote_wf, id="vote")
    assert decided == {"1": ("vote", 1)}  # the earliest branch holding the winning value
    assert ("1", "vote", "") in positions(info)
    assert ("1.1.1", "step", "timed") in positions(info)
    assert ("1.3.1", "step", "timed") not in positions(info)  # cancelled at the quorum

    # reversed: now the two "no" voters are fast and the "yes" voters never answer
    DELAY.update(j0=0.0, j1=FOREVER, j2=FOREVER, j3=0.0)
    result, info, decided = await finish_after_restart(db, "vote")
    assert result == plain == "Yes"  # the value as the earliest argument gave it
    assert decided == {"1": ("vote", 1)}
    assert positions(info)[-1] == ("2", "step", "gate")
    assert calls == {"j0": 1, "j1": 1, "j2": 1, "j3": 1, "gate:vote": 2}


# -- select --------------------------------------------------------------------------


@legato.workflow(name="flow_select")
async def select_wf(feed: bool) -> list[Any]:
    inbox: legato.Channel[str] = legato.Channel()
    if feed:
        await inbox.send(await timed("feed"))
    choice = await legato.select(
        message=inbox.receive(), approval=legato.wait_for_signal("approval"), timeout="1h")
    await gate(legato.workflow_id())
    later = await legato.wait_for_signal("approval", timeout="1m")
    return [choice.name, choice.value, later]


async def test_select_channel_arm_is_replayed(db):
    plain_inbox: legato.Channel[str] = legato.Channel()
    await plain_inbox.send("feed")
    plain = await legato.select(message=plain_inbox.receive(), never=asyncio.Event().wait(),
                                timeout=5)
    assert plain == legato.Selected("message", "feed")
    calls.clear()

    info, decided = await run_until_gate(
        db, select_wf, True, id="sel-ch", clock=legato.VirtualClock(start=0.0, autojump=False))
    assert decided == {"2": ("select", 0)}
    assert positions(info, "step", "select") == [("1", "step", "timed"), ("2", "select", "")]

    async def signal_now(rt: legato.Runtime) -> None:  # the approval arm would win now
        await rt.signal("sel-ch", "approval", "ana")

    result, info, decided = await finish_after_restart(
        db, "sel-ch", clock=legato.VirtualClock(start=7200.0), before=signal_now)
    assert result == ["message", "feed", "ana"]  # the signal is left for the later wait
    assert decided == {"2": ("select", 0)}
    assert calls == {"feed": 1, "gate:sel-ch": 2}


async def test_select_signal_arm_is_replayed(db):
    async def signal_now(rt: legato.Runtime) -> None:
        await rt.signal("sel-sig", "approval", "bo")

    info, decided = await run_until_gate(
        db, select_wf, False, id="sel-sig", clock=legato.VirtualClock(start=0.0, autojump=False),
        after_start=signal_now)
    assert decided == {"1": ("select", 1)}
    assert ("1.1.1", "signal", "approval") in positions(info)

    # reversed: two hours later, the 1h timer would fire at once if the select ran again
    result, info, decided = await finish_after_restart(
        db, "sel-sig", clock=legato.VirtualClock(start=7200.0))
    assert result == ["approval", "bo", None]  # consumed by the select, exactly once
    assert decided == {"1": ("select", 1)}
    assert calls == {"gate:sel-sig": 2}


async def test_select_timeout_arm_is_replayed_in_durable_time(db):
    empty: legato.Channel[str] = legato.Channel()
    plain = await legato.select(message=empty.receive(), timeout=0.01)
    assert plain == legato.Selected("timeout", None)

    clock = legato.VirtualClock(start=0.0)
    info, decided = await run_until_gate(db, select_wf, False, id="sel-to", clock=clock)
    assert clock.now() == 3600.0  # the durable timer, in virtual time
    assert decided == {"1": ("select", 2)}  # n (two arms) = the timeout
    assert ("1.2.1", "sleep", "") in positions(info)

    async def signal_now(rt: legato.Runtime) -> None:  # the approval arm would win now
        await rt.signal("sel-to", "approval", "cy")

    result, info, decided = await finish_after_restart(
        db, "sel-to", clock=legato.VirtualClock(start=3600.0), before=signal_now)
    assert result == ["timeout", None, "cy"]  # the replay consumed nothing
    assert decided == {"1": ("select", 2)}
    assert calls == {"gate:sel-to": 2}


@legato.workflow(name="flow_select_lost_signal")
async def select_lost_signal_wf() -> list[Any]:
    inbox: legato.Channel[str] = legato.Channel()
    await inbox.send("ready")
    choice = await legato.select(message=inbox.receive(),
                                 approval=legato.wait_for_signal("approval"))
    later = await legato.wait_for_signal("approval", timeout="1h")
    return [choice.name, later]


async def test_a_losing_signal_arm_does_not_consume_the_signal(db):
    async with legato.Runtime(db, worker=False) as client:  # the signal is already buffered
        await client.start(select_lost_signal_wf, id="lost")
        await client.signal("lost", "approval", "dee")
    async with legato.Runtime(db, clock=legato.VirtualClock(start=0.0)) as rt:
        result = await rt.handle("lost").result(timeout=5)
    # a channel arm with an item ready wins in its first step; the signal must stay buffered
    assert result == ["message", "dee"]


# -- timeout -------------------------------------------------------------------------


@legato.workflow(name="flow_timeout")
async def timeout_wf(name: str) -> str:
    value: str = await legato.timeout("1h", timed(name), default="late")
    await gate(legato.workflow_id())
    return value


async def test_timeout_that_fired_is_replayed(db):
    DELAY.update(slow=0.05)
    plain = await legato.timeout(0.01, timed("slow"), default="late")
    calls.clear()
    DELAY.update(slow=FOREVER)

    clock = legato.VirtualClock(start=0.0)
    info, decided = await run_until_gate(db, timeout_wf, "slow", id="to-fired", clock=clock)
    assert clock.now() == 3600.0
    assert decided == {"1": ("timeout", True)}
    assert positions(info) == [("1", "timeout", ""), ("1.1.1", "sleep", "")]

    DELAY.update(slow=0.0)  # reversed: it would be in time now
    result, info, decided = await finish_after_restart(
        db, "to-fired", clock=legato.VirtualClock(start=3600.0))
    assert result == plain == "late"
    assert decided == {"1": ("timeout", True)}
    assert calls == {"slow": 1, "gate:to-fired": 2}  # the cancelled work did not run again


async def test_timeout_that_did_not_fire_is_replayed(db):
    plain = await legato.timeout(5, timed("quick"), default="late")
    calls.clear()

    info, decided = await run_until_gate(
        db, timeout_wf, "quick", id="to-quick", clock=legato.VirtualClock(0.0, autojump=False))
    assert decided == {"1": ("timeout", False)}
    assert ("1.0.1", "step", "timed") in positions(info)

    DELAY.update(quick=FOREVER)  # reversed: it would never finish now, and the timer jumps
    result, info, decided = await finish_after_restart(
        db, "to-quick", clock=legato.VirtualClock(start=0.0))
    assert result == plain == "quick"
    assert decided == {"1": ("timeout", False)}
    assert calls == {"quick": 1, "gate:to-quick": 2}


# -- parallel ------------------------------------------------------------------------


@legato.workflow(name="flow_parallel")
async def parallel_wf() -> list[str]:
    values = await legato.parallel(timed("p0"), timed("p1"), timed("p2"))
    await gate(legato.workflow_id())
    return list(values)


async def test_parallel_success_keeps_argument_order_and_records_no_decision(db):
    DELAY.update(p0=0.02, p1=0.01, p2=0.0)  # they finish in reverse order
    plain = await legato.parallel(timed("p0"), timed("p1"), timed("p2"))
    calls.clear()

    info, decided = await run_until_gate(db, parallel_wf, id="par")
    assert decided == {}  # success: nothing to decide
    assert positions(info) == [(f"1.{i}.1", "step", "timed") for i in range(3)]

    DELAY.update(p0=FOREVER, p1=FOREVER, p2=FOREVER)
    result, info, decided = await finish_after_restart(db, "par")
    assert result == list(plain) == ["p0", "p1", "p2"]
    assert calls == {"p0": 1, "p1": 1, "p2": 1, "gate:par": 2}


@legato.workflow(name="flow_parallel_fails")
async def parallel_fails_wf() -> str:
    try:
        await legato.parallel(timed("hang"), failing("boom"))
    except ValueError as exc:
        outcome = f"caught: {exc}"
    else:
        outcome = "no error"
    await gate(legato.workflow_id())
    return outcome


async def test_parallel_failure_records_the_failing_index_and_replays_it(db):
    DELAY.update(hang=FOREVER)
    with pytest.raises(ValueError, match="boom failed"):
        await legato.parallel(timed("hang"), failing("boom"))
    calls.clear()

    info, decided = await run_until_gate(db, parallel_fails_wf, id="par-fail")
    assert decided == {"1": ("parallel", 1)}
    assert positions(info) == [("1", "parallel", ""), ("1.1.1", "step", "failing")]
    assert not info.steps[1].ok

    DELAY.update(hang=0.0)  # reversed: both would succeed now
    FAIL.update(boom=False)
    result, info, decided = await finish_after_restart(db, "par-fail")
    assert result == "caught: boom failed"  # the recorded error, raised again
    assert decided == {"1": ("parallel", 1)}
    assert calls == {"hang": 1, "boom": 1, "gate:par-fail": 2}


@legato.workflow(name="flow_parallel_limit")
async def parallel_limit_wf() -> list[int]:
    squares = await legato.parallel([limited(i) for i in range(5)], limit=2)
    await gate(legato.workflow_id())
    return squares


async def test_parallel_with_a_limit(db):
    plain = await legato.parallel([limited(i) for i in range(5)], limit=2)
    assert running["peak"] == 2
    calls.clear()
    running["peak"] = 0

    info, decided = await run_until_gate(db, parallel_limit_wf, id="par-lim")
    assert running["peak"] == 2
    assert decided == {}
    assert positions(info) == [(f"1.{i}.1", "step", "limited") for i in range(5)]

    result, info, _ = await finish_after_restart(db, "par-lim")
    assert result == plain == [0, 1, 4, 9, 16]
    assert calls == {**{f"limited-{i}": 1 for i in range(5)}, "gate:par-lim": 2}


# -- spawn ---------------------------------------------------------------------------


async def spawned() -> list[Any]:
    first = legato.spawn(timed("s0"))
    second = legato.spawn(timed("s1"))
    both = legato.spawn([timed("s2"), timed("s3")])
    return [await first, await second, await both]


@legato.workflow(name="flow_spawn")
async def spawn_wf() -> list[Any]:
    values = await spawned()
    await gate(legato.workflow_id())
    return values


async def test_spawned_futures_take_positions_in_spawn_order(db):
    DELAY.update(s0=0.02, s1=0.0, s2=0.01, s3=0.0)
    plain = await spawned()
    calls.clear()

    info, decided = await run_until_gate(db, spawn_wf, id="spawn")
    assert decided == {}
    # spawn order, not finishing order: each future is a branch of the workflow body
    assert positions(info) == [
        ("1.1", "step", "timed"), ("2.1", "step", "timed"),
        ("3.1.0.1", "step", "timed"), ("3.1.1.1", "step", "timed")]

    DELAY.update(s0=FOREVER, s1=FOREVER, s2=FOREVER, s3=FOREVER)
    result, info, _ = await finish_after_restart(db, "spawn")
    assert result == plain == ["s0", "s1", ["s2", "s3"]]
    assert calls == {"s0": 1, "s1": 1, "s2": 1, "s3": 1, "gate:spawn": 2}


# -- asyncio.gather of races -----------------------------------------------------------


@legato.workflow(name="flow_gather_races")
async def gather_races_wf() -> list[str]:
    picks = await asyncio.gather(
        legato.race(timed("g0a"), timed("g0b")),
        legato.race(timed("g1a"), timed("g1b")),
    )
    await gate(legato.workflow_id())
    return list(picks)


async def test_gathered_races_each_replay_their_own_decision(db):
    DELAY.update(g0a=0.0, g0b=FOREVER, g1a=FOREVER, g1b=0.0)
    plain = await asyncio.gather(
        legato.race(timed("g0a"), timed("g0b")), legato.race(timed("g1a"), timed("g1b")))
    calls.clear()

    info, decided = await run_until_gate(db, gather_races_wf, id="gr")
    # gather makes branches 1. and 2.; each race takes the first position of its branch
    assert decided == {"1.1": ("race", 0), "2.1": ("race", 1)}
    assert positions(info) == [
        ("1.1", "race", ""), ("1.1.0.1", "step", "timed"),
        ("2.1", "race", ""), ("2.1.1.1", "step", "timed")]

    DELAY.update(g0a=FOREVER, g0b=0.0, g1a=0.0, g1b=FOREVER)  # every race reversed
    result, info, decided = await finish_after_restart(db, "gr")
    assert result == plain == ["g0a", "g1b"]
    assert decided == {"1.1": ("race", 0), "2.1": ("race", 1)}
    assert calls == {"g0a": 1, "g0b": 1, "g1a": 1, "g1b": 1, "gate:gr": 2}


# -- @workflow(deterministic=True) ---------------------------------------------------------


def _has_deterministic_option() -> bool:
    try:
        legato.workflow(name="flow_probe_deterministic", deterministic=True)
    except TypeError:
        return False
    return True


if _has_deterministic_option():

    @legato.workflow(name="flow_deterministic", deterministic=True)
    async def deterministic_wf() -> dict[str, Any]:
        order: list[str] = []

        async def branch(name: str) -> str:
            value = await jitter(name)
            order.append(value)
            return value

        futures = [legato.spawn(branch(name)) for name in "abcd"]
        values = await legato.parallel(futures)
        winner = await legato.race(jitter("x"), jitter("y"), jitter("z"))
        verdict = await legato.vote(jitter("v1"), jitter("v2"), jitter("v3"), key=len)
        return {"order": order, "values": list(values), "winner": winner, "vote": verdict}


@pytest.mark.skipif(not _has_deterministic_option(),
                    reason="@legato.workflow(deterministic=True) does not exist yet")
async def test_deterministic_workflows_give_one_result_across_twenty_runs(db):
    async with legato.Runtime(db) as rt:
        results = await asyncio.gather(
            *(rt.run(deterministic_wf, id=f"det-{i}") for i in range(20)))
    assert results == [{
        "order": ["a", "b", "c", "d"], "values": ["a", "b", "c", "d"],
        "winner": "x", "vote": "v1"}] * 20
