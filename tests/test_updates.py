"""Updates: `rt.update(id, name, payload)` answered by `legato.wait_for_update(name)`."""

from __future__ import annotations

import asyncio

import pytest

import legato
import stream_workflows
from hygiene import hygiene  # noqa: F401  (each test ends with no leaked task)
from stream_workflows import update_server


@legato.workflow(name="counter")
async def counter() -> int:
    """Adds the payloads of "add" updates, replying with the running total, until "stop"."""
    total = 0
    while True:
        update = await legato.wait_for_update("add")
        assert update is not None
        if update.payload is None:
            await update.reply("stopped")
            return total
        total += update.payload
        await update.reply(total)


async def test_an_update_returns_the_workflows_reply(db):
    async with legato.Runtime(db) as rt:
        handle = await rt.start(counter, id="u-basic")
        assert await rt.update("u-basic", "add", 5, timeout=10) == 5
        assert await rt.update("u-basic", "add", 2, timeout=10) == 7
        assert await rt.update("u-basic", "add", None, timeout=10) == "stopped"
        assert await handle.result() == 7
        kinds = [(s.kind, s.name) for s in (await rt.get("u-basic")).steps]
        assert kinds.count(("update", "add")) == 3 and kinds.count(("reply", "add")) == 3


async def test_two_concurrent_updates_each_get_their_own_reply(db):
    async with legato.Runtime(db) as rt, legato.Runtime(db, worker=False) as client:
        handle = await rt.start(update_server, 2, id="u-two")
        one, two = await asyncio.gather(
            rt.update("u-two", "shout", "one", timeout=10),
            client.update("u-two", "shout", "two", timeout=10))
        assert (one, two) == ("ONE", "TWO")
        assert sorted(await handle.result()) == ["ONE", "TWO"]


async def test_a_retry_with_the_same_update_id_gets_the_recorded_reply(db, log):
    async with legato.Runtime(db) as rt:
        handle = await rt.start(update_server, 2, id="u-retry")
        first = await rt.update("u-retry", "shout", "hi", update_id="req-1", timeout=10)
        again = await rt.update("u-retry", "shout", "hi", update_id="req-1", timeout=10)
        assert first == again == "HI"
        await rt.update("u-retry", "shout", "bye", timeout=10)
        assert await handle.result() == ["HI", "BYE"]  # "req-1" was handled once
        # even after the workflow ended, the same update id still gets its reply
        assert await rt.update("u-retry", "shout", "hi", update_id="req-1") == "HI"
    assert log.read_text().split() == ["handled-hi", "handled-bye"]


@legato.workflow(name="gated_server")
async def gated_server() -> str:
    await legato.wait_for_signal("go")
    update = await legato.wait_for_update("shout")
    assert update is not None
    reply = await stream_workflows.handled(update.payload)
    await update.reply(reply)
    return reply


async def test_a_reply_survives_the_callers_timeout_and_is_read_later(db, log):
    """The caller gives up (or dies) before the reply; a call with its update id reads it."""
    async with legato.Runtime(db) as rt:
        handle = await rt.start(gated_server, id="u-late")
        with pytest.raises(legato.WorkflowTimeout, match="same update_id") as caught:
            await rt.update("u-late", "shout", "late", update_id="r", timeout=0.05)
        assert isinstance(caught.value, TimeoutError)
        await rt.signal("u-late", "go")
        assert await handle.result() == "LATE"  # replied with no one waiting
        assert await rt.update("u-late", "shout", "late", update_id="r", timeout=10) == "LATE"
    assert log.read_text().split() == ["handled-late"]


async def test_update_errors_are_clear(db):
    async with legato.Runtime(db) as rt:
        with pytest.raises(legato.WorkflowNotFound):
            await rt.update("u-none", "shout", "x")
        await rt.run(update_server, 0, id="u-done")
        with pytest.raises(legato.LegatoError, match="has already succeeded"):
            await rt.update("u-done", "shout", "x")
        with pytest.raises(ValueError, match="update_id"):
            await rt.update("u-done", "shout", "x", update_id="")
        with pytest.raises(ValueError, match="timeout"):
            await rt.update("u-done", "shout", "x", timeout=-1)
    with pytest.raises(legato.LegatoError, match="outside a workflow"):
        await legato.wait_for_update("x")


@legato.workflow(name="impatient")
async def impatient() -> str:
    update = await legato.wait_for_update("never", timeout="1h")
    return "timed out" if update is None else "got one"


async def test_wait_for_update_returns_none_on_timeout(db):
    async with legato.Runtime(db, clock=legato.VirtualClock()) as rt:
        assert await rt.run(impatient, id="u-impatient") == "timed out"


@legato.workflow(name="finishes_without_reply")
async def finishes_without_reply() -> str:
    update = await legato.wait_for_update("ask")
    assert update is not None
    return "ignored"


async def test_a_workflow_that_ends_without_replying_fails_the_caller(db):
    async with legato.Runtime(db) as rt:
        await rt.start(finishes_without_reply, id="u-ignored")
        with pytest.raises(legato.LegatoError, match="without replying"):
            await rt.update("u-ignored", "ask", 1, timeout=10)


async def test_a_reply_survives_a_worker_sigkill_right_after_it(db, child, log):
    """Killed after its reply: the caller reads it, and the recovery doesn't handle it again."""
    worker = child(db, "update_server", "u-kill", "2", script=stream_workflows.CHILD,
                   env={"LEGATO_STREAM_HANG": "reply:1"})
    await asyncio.to_thread(worker.wait_for, "started")
    async with legato.Runtime(db, worker=False) as caller:
        assert await caller.update("u-kill", "shout", "a", update_id="a", timeout=10) == "A"
        await asyncio.to_thread(worker.wait_for, "hanging")
        worker.kill()
        async with legato.Runtime(db) as recovery:
            assert await caller.update("u-kill", "shout", "a", update_id="a", timeout=10) == "A"
            assert await recovery.update("u-kill", "shout", "b", timeout=10) == "B"
            assert await recovery.handle("u-kill").result(timeout=10) == ["A", "B"]
    assert log.read_text().split() == ["handled-a", "handled-b"]


@legato.workflow(name="strict_counter")
async def strict_counter() -> int:
    total = 0
    for _ in range(2):
        update = await legato.wait_for_update("add")
        assert update is not None
        if update.payload < 1:
            await update.reject(ValueError(f"add takes a positive number, not {update.payload}"))
            continue
        total += update.payload
        await update.reply(total)
    return total


async def test_a_rejected_update_raises_its_error_in_the_caller(db):
    async with legato.Runtime(db) as rt:
        handle = await rt.start(strict_counter, id="u-reject")
        with pytest.raises(ValueError, match="positive number, not -1"):
            await rt.update("u-reject", "add", -1, update_id="bad", timeout=10)
        assert await rt.update("u-reject", "add", 3, timeout=10) == 3
        assert await handle.result() == 3
        with pytest.raises(ValueError, match="positive number"):  # kept, like a reply
            await rt.update("u-reject", "add", -1, update_id="bad")
