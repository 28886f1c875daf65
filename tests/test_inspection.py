"""The inspection API: rt.list filters and pages, rt.get's timeline, rt.history, both stores."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime, timedelta

import pytest

import legato
from inspection_workflows import FLAKY_FAILURES, CardDeclined, Order, checkout, populate


@pytest.fixture
async def store(db: str) -> str:
    await populate(db)
    return db


async def test_get_shows_inputs_output_children_and_events(store):
    async with legato.Runtime(store, worker=False) as rt:
        info = await rt.get("ok-1")
        child = await rt.get("ok-1/2")
    assert info.status == "succeeded" and info.name == "shop.checkout"
    assert info.args == (Order("tea", 2),) and info.kwargs == {"note": "gift"}
    assert info.output == {"cents": 300, "packed": "2xtea", "note": "gift"}
    assert info.error is None and info.traceback is None and info.failed_step is None
    assert info.children == ("ok-1/2",) and info.parent_id is None
    assert child.parent_id == "ok-1" and child.output == "2xtea"
    assert info.events == {"progress": {"packed": "2xtea"}}
    assert [(s.position, s.kind, s.name, s.summary) for s in info.steps] == [
        ("1", "step", "price", "300"), ("2", "child", "shop.pack", "'2xtea'"),
        ("3", "event", "progress", "None")]
    assert info.run_id and info.duration is not None


async def test_get_of_a_failed_workflow_has_the_error_its_traceback_and_the_timeline(store):
    async with legato.Runtime(store, worker=False) as rt:
        info = await rt.get("bad-1")
    assert info.status == "failed"
    assert info.error == "CardDeclined: card declined for 900"
    assert info.traceback is not None
    assert "raise CardDeclined(f\"card declined for {cents}\")" in info.traceback
    assert "in charge" in info.traceback
    steps = {s.position: s for s in info.steps}
    assert list(steps) == ["1", "1.1", "1.2", "1.3", "1.4", "2.1", "3.1", "4"]
    assert steps["1"].attempts == FLAKY_FAILURES + 1 and steps["1"].summary == "'reserved'"
    assert [steps[p].kind for p in ("1.1", "1.2", "1.3", "1.4")] == [
        "attempt", "sleep", "attempt", "sleep"]
    assert steps["1.1"].summary == "ConnectionError: gateway down (1)"
    assert steps["4"].summary == "CardDeclined: card declined for 900" and not steps["4"].ok
    assert info.failed_step == steps["4"]
    assert steps["2.1"].parent == "2" and steps["1"].parent is None
    for s in info.steps:
        assert s.started_at is not None and s.started_at <= s.at == s.finished_at
        assert s.duration is not None and s.duration >= 0
    assert steps["1.1"].started_at == steps["1"].started_at  # the first attempt starts the step
    assert steps["2.1"].started_at >= steps["1"].at  # the branch starts (is made) after the step
    assert steps["4"].started_at == steps["3.1"].at


async def test_result_of_a_failed_workflow_carries_the_recorded_traceback(store):
    async with legato.Runtime(store, worker=False) as rt:
        with pytest.raises(CardDeclined) as caught:
            await rt.handle("bad-1").result()
    notes = caught.value.__notes__
    assert len(notes) == 1 and notes[0].startswith("recorded traceback (workflow 'bad-1'")
    assert "in charge" in notes[0] and "card declined for {cents}" in notes[0]


async def test_list_filters_by_status_name_queue_and_parent(store):
    async with legato.Runtime(store, worker=False) as rt:
        ids = {s: [i.id for i in await rt.list(status=s)] for s in legato.Status}
        assert ids == {"pending": ["later-1"], "running": [], "waiting": ["wait-1"],
                       "succeeded": ["ok-1/2", "ok-1"], "failed": ["bad-1"],
                       "cancelled": ["gone-1"]}
        assert [i.id for i in await rt.list(name="shop.checkout")] == ["later-1", "ok-1"]
        assert [i.id for i in await rt.list(queue="emails")] == ["later-1"]
        assert [i.id for i in await rt.list(parent="ok-1")] == ["ok-1/2"]
        assert await rt.list(status="failed", name="shop.checkout") == []
        listed = (await rt.list(status="failed"))[0]
    assert listed.steps == () and listed.failed_step is not None  # light, but names the step
    assert listed.failed_step.name == "charge" and listed.error is not None
    assert listed.args == ("mug",)


async def test_list_pages_and_orders_by_creation_time(store):
    async with legato.Runtime(store, worker=False) as rt:
        newest = [i.id for i in await rt.list()]
        oldest = [i.id for i in await rt.list(order="oldest")]
        pages = [[i.id for i in await rt.list(limit=2, offset=o)] for o in (0, 2, 4, 6)]
        with pytest.raises(ValueError, match="order must be"):
            await rt.list(order="sideways")  # type: ignore[arg-type]
    assert newest == ["gone-1", "later-1", "wait-1", "bad-1", "ok-1/2", "ok-1"]
    assert oldest == newest[::-1]
    assert pages == [newest[0:2], newest[2:4], newest[4:6], []]


async def test_list_since_and_until_take_datetimes_or_epoch_seconds(store):
    async with legato.Runtime(store, worker=False) as rt:
        every = await rt.list(order="oldest")
        middle = every[2].created_at  # bad-1's: included by since=, excluded by until=
        since = [i.id for i in await rt.list(since=middle, order="oldest")]
        until = [i.id for i in await rt.list(until=middle, order="oldest")]
        assert since == [i.id for i in every[2:]] and until == [i.id for i in every[:2]]
        future = datetime.now(UTC) + timedelta(hours=1)
        assert await rt.list(since=future) == []
        assert len(await rt.list(since=time.time() - 3600)) == len(every)


async def test_history_is_the_raw_records_in_position_order(store):
    async with legato.Runtime(store, worker=False) as rt:
        records = await rt.history("bad-1")
        info = await rt.get("bad-1")
        with pytest.raises(legato.WorkflowNotFound):
            await rt.history("nobody")
        with pytest.raises(legato.WorkflowNotFound):
            await rt.get("nobody")
    assert all(isinstance(r, legato.HistoryRecord) for r in records)
    # the raw history also holds the engine's bookkeeping (a task made at 2, at 3...)
    shown = [r for r in records if r.kind not in ("branch", "started")]
    assert [r.kind for r in records if r not in shown] == ["branch", "branch"]
    assert [(r.position, r.kind, r.name, r.ok, r.at) for r in shown] == [
        (s.position, s.kind, s.name, s.ok, s.at) for s in info.steps]
    assert records[0].data == legato.JsonSerializer().dumps("reserved")


async def test_a_value_whose_class_does_not_import_here_is_shown_as_stored(sqlite_db):
    async with legato.Runtime(sqlite_db) as rt:
        await rt.run(checkout, Order("ink", 1), id="ink")
    # what a process without the workflow's code sees: a class it can't import
    with sqlite3.connect(sqlite_db) as conn:
        conn.execute("UPDATE workflows SET input = replace(input, 'inspection_workflows:',"
                     " 'gone_module:') WHERE id = 'ink'")
    async with legato.Runtime(sqlite_db, worker=False) as rt:
        info = await rt.get("ink")
    (order,) = info.args
    assert order["$legato"] and "gone_module:Order" in str(order)
