"""legato.testing.explore: crash at every commit point, recover, compare; find planted bugs."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import legato
from examples_loader import load_example
from legato.testing import ExploreFailed, explore

# -- a correct workflow: 20 steps, one a 3-way gather ------------------------------------


@legato.step
async def double(i: int) -> int:
    await asyncio.sleep(0)
    return 2 * i


@legato.workflow(name="explore_twenty")
async def twenty(n: int) -> dict[str, Any]:
    total = 0
    for i in range(n):
        total += await double(i)
    parts = await asyncio.gather(double(100), double(101), double(102))
    await legato.sleep("1d")  # virtual: costs nothing
    return {"total": total, "parts": parts, "id": str(legato.uuid4()), "r": legato.random(),
            "at": legato.now().isoformat()}


async def test_a_correct_workflow_passes_every_crash_point_and_order() -> None:
    report = await explore(twenty, 17, seed=7)
    assert report.ok, report
    assert report.concurrent  # the gather's steps: each point crashed in two orders
    points = len(report.commits)
    assert points >= 20 + 1  # 20 steps, the sleep, the branches, the finish
    assert [c.case for c in report.cases] == ["first"] + [
        f"crash@{k}" for k in range(points)] + [f"crash@{k}~1" for k in range(points)]
    assert report.commits[-1].kind == "finish"
    # only the step in flight at the crash ran again
    crash_5 = next(c for c in report.cases if c.case == "crash@5")
    assert crash_5.lost is not None and crash_5.lost.position == "6"
    assert crash_5.runs == {"'double' at 6": 2}


async def test_runs_and_only_pick_the_cases() -> None:
    three = await explore(twenty, 3, runs=3, seed=1)
    assert len(three.cases) == 1 + 3
    one = await explore(twenty, 3, only="crash@4~1", seed=1)
    assert [c.case for c in one.cases] == ["first", "crash@4~1"]
    with pytest.raises(ValueError, match="crash@3"):
        await explore(twenty, 3, only="4")


# -- planted bug 1: a step that is not idempotent, then a signal ------------------------

LEDGER: list[str] = []  # a payment provider's ledger


@legato.step
async def charge(who: str) -> int:
    LEDGER.append(who)  # no idempotency key: a second call charges again
    return len(LEDGER)


@legato.step
async def charge_once(who: str, key: str) -> int:
    if key not in LEDGER:  # the provider dedups by key
        LEDGER.append(key)
    return LEDGER.index(key) + 1


@legato.workflow(name="explore_pay")
async def pay(who: str) -> tuple[int, Any]:
    receipt = await charge(who)
    confirmed = await legato.wait_for_signal("confirm")
    return receipt, confirmed


@legato.workflow(name="explore_pay_once")
async def pay_once(who: str) -> tuple[int, Any]:
    receipt = await charge_once(who, f"{legato.workflow_id()}-charge")
    confirmed = await legato.wait_for_signal("confirm")
    return receipt, confirmed


async def test_finds_a_step_that_is_not_idempotent_across_a_crash() -> None:
    with pytest.raises(ExploreFailed) as caught:
        await explore(pay, "ana", signals={"confirm": "yes"}, reset=LEDGER.clear, seed=3)
    report = caught.value.report
    assert [c.case for c in report.failures] == ["crash@0"]
    failure = report.failures[0]
    assert failure.lost is not None
    assert (failure.lost.position, failure.lost.kind, failure.lost.name) == ("1", "step",
                                                                            "charge")
    message = str(caught.value)
    assert "crash before any commit; lost commit 1: step 'charge' at 1" in message
    assert "the first run gave (1, 'yes'), this one (2, 'yes')" in message
    assert "ran again after the crash (is it idempotent?): 'charge' at 1" in message
    assert "seed 3" in message and "only='crash@0'" in message


async def test_passes_the_same_sequence_with_an_idempotency_key() -> None:
    report = await explore(pay_once, "ana", signals={"confirm": "yes"}, reset=LEDGER.clear)
    assert report.ok and report.expected is not None and report.expected.value == (1, "yes")
    kinds = [c.kind for c in report.commits]
    assert kinds == ["step", "started", "signal", "finish"]


# -- planted bug 2: the wall clock in a branch condition ---------------------------------


class WallClock(datetime):
    """The real clock as a test sees it: an hour passes between two readings."""

    readings = 0

    @classmethod
    def now(cls, tz: Any = None) -> WallClock:  # type: ignore[override]
        cls.readings += 1
        return cls(2030, 1, 7, 11, 30) + timedelta(hours=cls.readings - 1)  # type: ignore[return-value]


@legato.step
async def morning_report() -> str:
    return "morning"


@legato.step
async def evening_report() -> str:
    return "evening"


@legato.step
async def send(report: str) -> str:
    return f"sent {report}"


@legato.workflow(name="explore_wall_clock")
async def daily() -> str:
    await send("hello")
    if WallClock.now().hour < 12:  # BUG: the wall clock, not legato.now()
        report = await morning_report()
    else:
        report = await evening_report()
    return await send(report)


def reset_wall_clock() -> None:
    WallClock.readings = 0


async def test_finds_a_branch_on_the_wall_clock() -> None:
    with pytest.raises(ExploreFailed) as caught:
        await explore(daily, reset=reset_wall_clock)
    report = caught.value.report
    # crashed before the first run read the wall clock: nothing to disagree with
    assert [c.case for c in report.cases if c.ok] == ["first", "crash@0"]
    problems = "\n".join(p for c in report.failures for p in c.problems)
    assert "NonDeterminismError" in problems  # crashed after the branch: replay disagrees
    assert "step 'morning_report'" in problems and "step 'evening_report'" in problems
    assert "result differs" in problems  # crashed before it: the other branch runs


# -- hangs, recorded fakes -------------------------------------------------------------


@legato.workflow(name="explore_waits_forever")
async def waits_forever() -> Any:
    return await legato.wait_for_signal("never")


async def test_a_workflow_that_never_ends_is_a_hang() -> None:
    report = await explore(waits_forever, timeout=0.3, check=False)
    assert not report.ok
    assert report.failures[0].case == "first"
    assert "hung" in report.failures[0].problems[0]


EFFECTS: list[int] = []


@legato.step
async def effect(i: int) -> int:
    EFFECTS.append(i)
    return i


@legato.workflow(name="explore_effects")
async def effects() -> int:
    return sum(await asyncio.gather(*(effect(i) for i in range(4))))


async def test_recorded_steps_run_only_in_the_first_run() -> None:
    EFFECTS.clear()
    report = await explore(effects, steps="recorded")
    assert report.ok and len(report.cases) > 5
    assert sorted(EFFECTS) == [0, 1, 2, 3]


async def test_keeps_the_case_stores_in_a_directory(tmp_path: Path) -> None:
    await explore(effects, store=tmp_path, runs=1)
    names = sorted(n for n in os.listdir(tmp_path) if n.endswith(".db"))
    assert names[0].startswith("crash@") and "first.db" in names
    async with legato.Runtime(tmp_path / "first.db", worker=False) as rt:
        assert (await rt.get("explore")).status == "succeeded"


# -- the examples ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def examples() -> Iterator[dict[str, ModuleType]]:
    yield {name: load_example(name) for name in (
        "demo", "stent_patterns", "beluga_orchestration", "ensemble_analyzer", "research_team")}


async def test_explore_the_demo(examples: dict[str, ModuleType]) -> None:
    demo = examples["demo"]
    report = await explore(demo.plan_trip, "Ana", "Lisbon", 500, steps="recorded")
    assert report.ok and report.expected is not None and report.expected.value["booked"]


async def test_explore_the_stent_saga_and_approval(examples: dict[str, ModuleType]) -> None:
    stent = examples["stent_patterns"]
    booked = await explore(stent.book_trip, {"who": "bo"})
    failed = await explore(stent.book_trip, {"who": "ana", "unavailable": "car"})
    assert failed.expected is not None and "no car available" in failed.expected.error
    request = {"id": "expense-1", "approvers": ["ana", "bo"]}
    approved = await explore(stent.approval_with_timeout, request,
                             signals={"approval": {"approver": "bo"}})
    timed_out = await explore(stent.approval_with_timeout, request)
    assert all(r.ok for r in (booked, failed, approved, timed_out))
    assert timed_out.expected is not None and "timed out" in timed_out.expected.value


async def test_explore_the_beluga_graph(examples: dict[str, ModuleType]) -> None:
    report = await explore(examples["beluga_orchestration"].research, "example.com")
    assert report.ok and report.concurrent


async def test_explore_the_agent_examples(examples: dict[str, ModuleType]) -> None:
    from legato.agents import OpenAIChat, set_model
    from legato.agents.testing import ScriptedModel

    ensemble = examples["ensemble_analyzer"]
    with ScriptedModel(ensemble.REPLIES) as server:
        async with OpenAIChat(server.base_url) as model:
            set_model(model)
            try:
                report = await explore(ensemble.analyze_review, "The battery lasts two days.")
            finally:
                set_model(None)
    assert report.ok, report

    team = examples["research_team"]
    with ScriptedModel(team.model_reply, pages=team.search_page) as server:
        async with OpenAIChat(server.base_url) as model:
            set_model(model)
            try:  # parallel searches, a race, a vote; crash runs answered from the first run
                report = await explore(team.research, "renewable energy", server.url,
                                       steps="recorded")
            finally:
                set_model(None)
    assert report.ok and report.concurrent, report
