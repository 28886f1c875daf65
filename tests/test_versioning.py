"""``legato.patched``: code changed under running workflows, old runs replaying as they ran."""

from __future__ import annotations

from collections import Counter

import pytest

import legato
from polling import eventually, status_is

ran: Counter[str] = Counter()


@legato.step
async def step_a() -> str:
    ran["a"] += 1
    return "a"


@legato.step
async def step_b() -> str:
    ran["b"] += 1
    return "b"


@legato.step
async def confirm() -> str:
    ran["confirm"] += 1
    return "confirm"


@legato.step
async def step_d() -> str:
    ran["d"] += 1
    return "d"


async def v1() -> list[str]:
    out = [await step_a(), await step_b()]
    await legato.wait_for_signal("go")
    return [*out, await step_d()]


async def v2() -> list[str]:
    out = [await step_a()]
    if legato.patched("confirm-first"):
        out.append(await confirm())
    out.append(await step_b())
    await legato.wait_for_signal("go")
    return [*out, await step_d()]


async def v3() -> list[str]:
    out = [await step_a()]
    legato.deprecate_patch("confirm-first")
    out.append(await confirm())
    out.append(await step_b())
    await legato.wait_for_signal("go")
    return [*out, await step_d()]


def deploy(body):  # the same workflow name, new code: the latest definition wins
    return legato.workflow(name="versioned")(body)


async def start_and_park(db: str, workflow, workflow_id: str) -> None:
    """Start ``workflow`` and stop the Runtime once it is suspended on "go".

    Stopping it any earlier leaves the run in flight, and the next Runtime
    replays it with whatever code is deployed then, before any signal.
    """
    async with legato.Runtime(db) as rt:
        handle = await rt.start(workflow, id=workflow_id)
        await eventually(status_is(handle, "waiting"))


async def finish(db: str, *workflow_ids: str) -> list[list[str]]:
    async with legato.Runtime(db) as rt:
        for wid in workflow_ids:
            await rt.signal(wid, "go")
        return [await rt.handle(wid).result(timeout=10) for wid in workflow_ids]


@pytest.fixture(autouse=True)
def _fresh_counts():
    ran.clear()


async def test_old_runs_keep_the_old_path_and_new_runs_take_the_new(db):
    await start_and_park(db, deploy(v1), "old")
    workflow = deploy(v2)  # deployed while "old" is in flight
    await start_and_park(db, workflow, "new")
    assert await finish(db, "old", "new") == [["a", "b", "d"], ["a", "confirm", "b", "d"]]
    assert ran == {"a": 2, "b": 2, "confirm": 1, "d": 2}  # nothing replayed ran again
    async with legato.Runtime(db) as rt:
        kinds = [(s.kind, s.name) for s in (await rt.get("new")).steps][:2]
    assert kinds == [("step", "step_a"), ("patch", "confirm-first")]


async def test_without_patched_the_change_is_a_nondeterminism_error(db):
    await start_and_park(db, deploy(v1), "old")

    async def unguarded() -> list[str]:
        return [await step_a(), await confirm(), await step_b()]

    deploy(unguarded)
    async with legato.Runtime(db) as rt:
        await rt.signal("old", "go")
        with pytest.raises(legato.NonDeterminismError, match="step 'confirm'"):
            await rt.handle("old").result(timeout=10)


async def test_deprecate_patch_keeps_marked_runs_replaying_and_new_runs_unmarked(db):
    await start_and_park(db, deploy(v2), "marked")  # recorded the marker
    deploy(v3)
    await start_and_park(db, deploy(v3), "unmarked")
    assert await finish(db, "marked", "unmarked") == [["a", "confirm", "b", "d"]] * 2
    async with legato.Runtime(db) as rt:
        assert [s.kind for s in (await rt.get("unmarked")).steps].count("patch") == 0


async def test_outside_a_workflow_the_new_code_runs_and_ids_are_checked():
    assert legato.patched("anything") is True
    legato.deprecate_patch("anything")  # nothing to do
    with pytest.raises(ValueError, match="non-empty id"):
        legato.patched("")
