"""``rt.fork``: a new workflow reuses the original's records before a point, runs the rest."""

from __future__ import annotations

import pytest

import legato

ran: list[str] = []
version = {"tail": "v1"}


@legato.step
async def fetch(order: str) -> str:
    ran.append("fetch")
    return f"items of {order}"


@legato.step
async def charge(order: str) -> str:
    ran.append("charge")
    return f"charged {order}"


@legato.step
async def ship(order: str) -> str:
    ran.append("ship")
    return f"shipped {order} ({version['tail']})"


@legato.workflow(name="fork_order")
async def order(order: str) -> list[str]:
    return [await fetch(order), await charge(order), await ship(order)]


@pytest.fixture(autouse=True)
def _fresh() -> None:
    ran.clear()
    version["tail"] = "v1"


async def test_a_fork_reuses_the_steps_before_the_point_and_runs_the_rest_with_todays_code(db):
    async with legato.Runtime(db) as rt:
        assert (await rt.run(order, "o1", id="o1"))[2] == "shipped o1 (v1)"
        ran.clear()
        version["tail"] = "v2"  # the fix deployed
        forked = await rt.fork("o1", at="ship", new_id="o1-fixed")
        assert await forked.result(timeout=10) == [
            "items of o1", "charged o1", "shipped o1 (v2)"]
        assert ran == ["ship"]  # fetch and charge replayed, not run
        by_position = await rt.fork("o1", at=2)
        assert (await by_position.result(timeout=10))[1:] == ["charged o1", "shipped o1 (v2)"]
        assert ran == ["ship", "charge", "ship"]
        original = await rt.get("o1")
        assert original.output == ["items of o1", "charged o1", "shipped o1 (v1)"]
        assert [s.name for s in original.steps] == ["fetch", "charge", "ship"]
        again = await rt.fork("o1", at="ship", new_id="o1-fixed")  # an id that exists
        assert await again.result() == await forked.result()


async def test_a_fork_point_must_name_a_top_level_position_or_step(sqlite_db):
    async with legato.Runtime(sqlite_db) as rt:
        await rt.run(order, "o2", id="o2")
        with pytest.raises(ValueError, match="its steps: charge, fetch, ship"):
            await rt.fork("o2", at="refund")
        with pytest.raises(ValueError, match="inside a branch"):
            await rt.fork("o2", at="2.1")
        with pytest.raises(legato.WorkflowNotFound):
            await rt.fork("missing", at=1)
        assert [w.id for w in await rt.list()] == ["o2"]  # nothing stored
