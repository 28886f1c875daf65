"""legato.testing.replay: today's code against recorded histories, without running steps."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import legato
from examples_loader import load_example
from legato.testing import History, ReplayFailed, load_history, replay

GOLDEN = Path(__file__).parent / "golden"
RAN: list[str] = []  # steps that really ran


@legato.step
async def reserve(item: str) -> str:
    RAN.append("reserve")
    return f"R-{item}"


@legato.step
async def confirm(ref: str) -> str:
    RAN.append("confirm")
    return f"confirmed {ref}"


@legato.step
async def charge(ref: str) -> int:
    RAN.append("charge")
    return 42


@legato.workflow(name="replay_order")
async def order(item: str) -> dict[str, Any]:
    ref = await reserve(item)
    await legato.sleep("1h")
    paid = await charge(ref)
    return {"ref": ref, "paid": paid, "id": str(legato.uuid4())}


async def recorded(tmp_path: Path, workflow: Any = order, *args: Any,
                   signals: dict[str, Any] | None = None) -> History:
    # never unloaded: claimed back by name, a later test's version of it would run
    async with legato.Runtime(tmp_path / "orders.db", clock=legato.VirtualClock(),
                              suspend_after="10d") as rt:
        handle = await rt.start(workflow, *(args or ("book",)), id="order-1")
        for name, payload in (signals or {}).items():
            await rt.signal("order-1", name, payload)
        if signals is not None or workflow is order:
            await handle.result()
        return await History.from_runtime(rt, "order-1")


async def test_the_same_code_replays_its_history_without_running_a_step(tmp_path: Path) -> None:
    history = await recorded(tmp_path)
    RAN.clear()
    report = await replay(order, history)
    assert report.ok and report.complete and RAN == []
    assert report.outcome is not None and report.outcome.value["paid"] == 42
    assert "ok (result" in str(report)


async def test_an_exported_file_round_trips(tmp_path: Path) -> None:
    history = await recorded(tmp_path)
    path = tmp_path / "order.json"
    path.write_text(history.dumps())
    assert load_history(path) == history
    assert (await replay(order, path)).ok
    assert (await replay(order, history.to_json())).ok


async def test_reports_the_exact_position_of_an_inserted_step(tmp_path: Path) -> None:
    history = await recorded(tmp_path)

    @legato.workflow(name="replay_order")
    async def order_v2(item: str) -> dict[str, Any]:
        ref = await reserve(item)
        await confirm(ref)  # new
        await legato.sleep("1h")
        paid = await charge(ref)
        return {"ref": ref, "paid": paid, "id": str(legato.uuid4())}

    RAN.clear()
    with pytest.raises(ReplayFailed) as caught:
        await replay(order_v2, history)
    assert RAN == []
    divergence = caught.value.report.divergence
    assert divergence is not None
    assert (divergence.position, divergence.recorded, divergence.now) == (
        "2", "sleep", "step 'confirm'")
    assert 'if legato.patched("add-confirm"):\n        await confirm(...)' in divergence.fix
    assert "diverges at position 2: the history recorded sleep; the code now does " \
           "step 'confirm'" in str(caught.value)


async def test_accepts_the_same_change_guarded_by_patched(tmp_path: Path) -> None:
    history = await recorded(tmp_path)

    @legato.workflow(name="replay_order")
    async def order_v3(item: str) -> dict[str, Any]:
        ref = await reserve(item)
        if legato.patched("add-confirm"):
            await confirm(ref)
        await legato.sleep("1h")
        paid = await charge(ref)
        return {"ref": ref, "paid": paid, "id": str(legato.uuid4())}

    RAN.clear()
    report = await replay(order_v3, history)
    assert report.ok and report.complete and RAN == []


async def test_a_replaced_step_and_a_step_added_at_the_end(tmp_path: Path) -> None:
    history = await recorded(tmp_path)

    @legato.workflow(name="replay_order")
    async def replaced(item: str) -> dict[str, Any]:
        ref = await reserve(item)
        await legato.sleep("1h")
        return {"confirmed": await confirm(ref)}

    report = await replay(replaced, history, check=False)
    assert report.divergence is not None and report.divergence.position == "3"
    assert report.divergence.recorded == "step 'charge'"
    assert "else:" in report.divergence.fix and "@legato.step(name='charge')" in \
        report.divergence.fix

    @legato.workflow(name="replay_order")
    async def longer(item: str) -> dict[str, Any]:
        result = await order.fn(item)
        await confirm(result["ref"])
        return result

    report = await replay(longer, history, check=False)
    assert report.divergence is not None and report.divergence.position == "5"
    assert report.divergence.recorded == "nothing: the workflow succeeded without it"


async def test_a_changed_result_diverges_at_the_end(tmp_path: Path) -> None:
    history = await recorded(tmp_path)

    @legato.workflow(name="replay_order")
    async def cheaper(item: str) -> dict[str, Any]:
        result = await order.fn(item)
        return {**result, "paid": result["paid"] - 1}

    report = await replay(cheaper, history, check=False)
    assert report.divergence is not None and report.divergence.position == "end"
    assert "'paid': 42" in report.divergence.recorded
    assert "'paid': 41" in report.divergence.now


@legato.workflow(name="replay_waits")
async def waits(item: str) -> str:
    ref = await reserve(item)
    await legato.set_event("asked", True)
    approval = await legato.wait_for_signal("approval")
    return f"{ref} approved by {approval}"


async def test_a_history_in_flight_is_checked_up_to_its_end(tmp_path: Path) -> None:
    async with legato.Runtime(tmp_path / "w.db", clock=legato.VirtualClock()) as rt:
        handle = await rt.start(waits, "book", id="order-1")
        assert await handle.get_event("asked") is True
        history = await History.from_runtime(rt, "order-1")
    RAN.clear()
    report = await replay(waits, history)
    assert report.ok and not report.complete and RAN == []
    assert report.next_call == "signal 'approval' at 3"
    assert "ok so far; the history ends before signal 'approval' at 3" in str(report)


# -- the golden histories of the examples -------------------------------------------------

GOLDEN_FILES = sorted(n for n in os.listdir(GOLDEN) if n.endswith(".json"))


@pytest.mark.parametrize("name", GOLDEN_FILES, ids=[n.removesuffix(".json") for n in GOLDEN_FILES])
async def test_golden_histories_still_replay(name: str) -> None:
    workflows = {
        "plan_trip": load_example("demo").plan_trip,
        "example_trip": load_example("stent_patterns").book_trip,
        "example_approval": load_example("stent_patterns").approval_with_timeout,
        "beluga_research": load_example("beluga_orchestration").research,
    }
    history = load_history(GOLDEN / name)
    report = await replay(workflows[history.name], history)
    assert report.ok and report.complete, report


def test_the_testing_surface() -> None:
    import legato.testing

    assert {"explore", "replay", "History", "ExploreReport", "ReplayReport", "ExploreFailed",
            "ReplayFailed"} <= set(legato.testing.__all__)
    assert legato.testing.__all__ == sorted(legato.testing.__all__)
    for name in ("explore", "replay"):
        assert "Example::" in (getattr(legato.testing, name).__doc__ or "")
