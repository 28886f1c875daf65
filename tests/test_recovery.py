"""Workflows taken over from a worker that died: the takeover is logged, and counted."""

from __future__ import annotations

import logging
import time

import legato
from legato.store import NewWorkflow, open_store
from polling import eventually


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
