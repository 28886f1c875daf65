"""Workflows taken over from a worker that died: the takeover is logged, and counted."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

import legato
import recovery_child
from legato.store import Claimed, ClaimRequest, NewWorkflow, Store, open_store
from polling import eventually

_CHILD = Path(__file__).parent / "recovery_child.py"


@legato.workflow(name="recovery_echo")
async def echo(text: str) -> str:
    return text


async def _orphan(db: str, workflow_id: str, owner: str) -> None:
    """A ``running`` row whose worker (``owner``'s) died: its lease lapsed a second ago."""
    store = open_store(db)
    await store.open()
    try:
        data = echo.encode_input(legato.JsonSerializer(), ("hi",), {})
        await store.create(NewWorkflow(workflow_id, echo.name, data, owner, time.time() - 1))
    finally:
        await store.close()


async def test_the_worker_logs_a_takeover_after_a_dead_worker(db, caplog):
    await _orphan(db, "orphan", "host:9:dead#3")
    with caplog.at_level(logging.WARNING, logger="legato.worker"):
        async with legato.Runtime(db) as rt:
            assert await rt.handle("orphan").result(timeout=5) == "hi"
            await eventually(lambda: any(
                getattr(r, "workflow_id", None) == "orphan" for r in caplog.records))
    (line,) = [r for r in caplog.records if getattr(r, "workflow_id", None) == "orphan"]
    assert line.levelno == logging.WARNING
    assert line.getMessage().startswith(
        "took over workflow 'orphan' (recovery_echo) from worker host:9:dead whose lease lapsed")
    assert (line.workflow, line.previous_worker, line.previous_attempt, line.recoveries) == (
        "recovery_echo", "host:9:dead", "host:9:dead#3", 1)
    assert line.attempt.startswith(rt.worker_id + "#")


ran: list[str] = []


@legato.workflow(name="recovery_limited", max_recoveries=2)
async def limited(text: str) -> str:
    ran.append(text)
    return text


async def _die_holding(store: Store, workflow_id: str, worker: str) -> Claimed:
    """``worker`` takes ``workflow_id`` over and dies at once: its lease has lapsed already."""
    (taken,) = await store.claim(ClaimRequest(
        owner=f"{worker}#1", lease_until=time.time() - 1, real_now=time.time(),
        durable_now=0.0, limit=1, names=[limited.name]))
    return taken


async def test_a_workflow_recovered_max_recoveries_times_fails_at_the_next_takeover(db):
    ran.clear()
    data = limited.encode_input(legato.JsonSerializer(), ("hi",), {})
    store = open_store(db)
    await store.open()
    try:
        await store.create(NewWorkflow("p", limited.name, data, "w0#1", time.time() - 1))
        assert [(await _die_holding(store, "p", w)).recoveries for w in ("w1", "w2")] == [1, 2]
    finally:
        await store.close()
    async with legato.Runtime(db) as rt:
        with pytest.raises(legato.RecoveryLimitExceeded) as caught:
            await rt.handle("p").result(timeout=5)
        assert ran == []  # taken over a third time: failed, not run
        err = caught.value
        assert (err.workflow_id, err.workflow, err.recoveries, err.limit) == (
            "p", "recovery_limited", 3, 2)
        assert "died 3 times (max_recoveries=2)" in str(err)
        assert "rt.resume('p')" in str(err)
        assert [w.id for w in await rt.list(status="failed")] == ["p"]
        await rt.resume("p")  # the count starts again
        assert await rt.handle("p").result(timeout=5) == "hi"
        assert ran == ["hi"]
        record = await rt.store.get("p")
        assert record is not None and record.recoveries == 0


def test_max_recoveries_must_be_a_count_or_none():
    with pytest.raises(ValueError, match="max_recoveries must be a whole number >= 0"):
        legato.workflow(name="recovery_bad", max_recoveries=-1)(echo.fn)


@pytest.mark.slow  # 2-4 s: four worker processes; the fast version takes over by the store
async def test_a_poison_input_that_kills_its_worker_is_failed_after_max_recoveries(
        db, child, log):
    """Real processes: each run's step ends its process; the third takeover fails it."""
    async with legato.Runtime(db, worker=False) as rt:
        await rt.start(recovery_child.poison, id="poison")
        children = [child(db, script=_CHILD) for _ in range(4)]
        with pytest.raises(legato.RecoveryLimitExceeded, match="died 3 times"):
            await rt.handle("poison").result(timeout=30)
    assert log.read_text().split() == ["ran"] * 3  # the first run and 2 recoveries
    assert sum(c.proc.poll() is None for c in children) == 1  # 3 killed, 1 failed it
