"""Machine faults and bad input (issue 13, the parts in the engine and the client)."""

from __future__ import annotations

import asyncio

import pytest

import legato


@legato.workflow(name="mf_publishes")
async def publishes() -> str:
    await legato.set_event("stage", "set")
    await legato.wait_for_signal("go")
    return "done"


async def test_get_event_with_timeout_zero_returns_an_event_that_is_set(db):
    async with legato.Runtime(db) as rt:
        handle = await rt.start(publishes, id="ev")
        assert await handle.get_event("stage", timeout=5) == "set"
        for _ in range(20):  # a read with no time to wait still reads
            assert await handle.get_event("stage", timeout=0) == "set"
        assert await handle.get_event("missing", timeout=0) is None
        await rt.signal("ev", "go")
        assert await handle.result(timeout=5) == "done"


@pytest.mark.parametrize(("bad", "match"), [
    ("a\ud800b", "lone surrogate"),
    ("x" * 100_000, "at most 1000 characters"),
    ("", "non-empty str"),
])
async def test_a_bad_workflow_id_fails_at_the_call_with_a_short_message(sqlite_db, bad, match):
    async with legato.Runtime(sqlite_db) as rt:
        with pytest.raises((ValueError, TypeError), match=match) as caught:
            await rt.start(publishes, id=bad)
        assert await rt.list() == []  # nothing stored
    assert len(str(caught.value)) < 300


@pytest.mark.parametrize("options", [
    {"lease": float("nan")}, {"lease": float("inf")}, {"lease": 0},
    {"concurrency": float("nan")}, {"concurrency": 0}, {"concurrency": 2.5},
])
def test_nonsense_runtime_options_are_refused_naming_them(sqlite_db, options):
    (name,) = options
    with pytest.raises(ValueError, match=name):
        legato.Runtime(sqlite_db, **options)


@legato.step
async def _occupy(tag: str) -> str:
    global _running, _peak
    _running += 1
    _peak = max(_peak, _running)
    await asyncio.sleep(0.01)
    _running -= 1
    return tag


@legato.workflow(name="mf_occupies")
async def occupies(tag: str) -> str:
    return await _occupy(tag)


_running = _peak = 0


async def test_a_concurrency_limit_holds_against_starts_made_at_once(db):
    global _peak
    _peak = 0
    async with legato.Runtime(db, concurrency=2) as rt:
        for burst in range(10):  # starts racing each other and the claim loop
            handles = await asyncio.gather(*(
                rt.start(occupies, f"{burst}-{n}", id=f"{burst}-{n}") for n in range(8)))
            assert await asyncio.gather(*(h.result(timeout=20) for h in handles)) == [
                f"{burst}-{n}" for n in range(8)]
    assert _peak == 2


@legato.workflow(name="mf_fails")
async def fails() -> None:
    raise ValueError("no such customer")


async def test_the_worker_logs_a_failure_with_its_error_and_what_to_do(sqlite_db, caplog):
    async with legato.Runtime(sqlite_db) as rt:
        with caplog.at_level("INFO", logger="legato.worker"), pytest.raises(ValueError):
            await rt.run(fails, id="f")
    (line,) = [r for r in caplog.records if getattr(r, "workflow_id", None) == "f"]
    assert line.levelname == "WARNING" and line.status == "failed"  # type: ignore[attr-defined]
    assert "ValueError: no such customer" in line.getMessage()
    assert "legato show f" in line.getMessage()


@legato.step
async def _reports(n: int) -> int:
    await legato.set_event("progress", {"done": n})
    return n


@legato.workflow(name="mf_step_events")
async def step_events() -> int:
    await _reports(1)
    await legato.wait_for_signal("go")
    return await _reports(2)


async def test_set_event_inside_a_step_publishes_and_records_nothing(db):
    async with legato.Runtime(db) as rt:
        handle = await rt.start(step_events, id="se")
        assert await handle.get_event("progress", timeout=5) == {"done": 1}
        await rt.signal("se", "go")
        assert await handle.result(timeout=5) == 2
        assert await handle.get_event("progress", timeout=0) == {"done": 2}
        assert "event" not in {r.kind for r in await rt.history("se")}  # nothing recorded


async def test_get_event_of_an_id_not_stored_yet_waits_for_it(db):
    async with legato.Runtime(db) as rt:
        assert await rt.handle("nobody").get_event("progress", timeout=0.05) is None
        reader = asyncio.create_task(rt.handle("se2").get_event("progress", timeout=10))
        await asyncio.sleep(0.05)  # the reader waits on an id that doesn't exist yet
        await rt.start(step_events, id="se2")
        assert await reader == {"done": 1}
        await rt.signal("se2", "go")
        await rt.handle("se2").result(timeout=5)
