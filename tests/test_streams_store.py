"""The stores' stream and update methods (the `Streams` and `Updates` protocols)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

import legato
from hygiene import hygiene  # noqa: F401  (each test ends with no leaked task)
from legato.store import NewWorkflow, StepRecord, Store, open_store


@pytest.fixture
async def store(db: str) -> AsyncIterator[Store]:
    s = open_store(db)
    await s.open()
    await s.create(NewWorkflow("w", "wf", b"{}", "me", time.time() + 60))
    yield s
    await s.close()


def record(position: str, kind: str, name: str = "k") -> StepRecord:
    return StepRecord(position, kind, name, True, None, time.time())


async def test_writes_get_offsets_in_order_and_an_origin_lands_once(store):
    for origin, value in [("a", b"1"), ("b", b"2"), ("a", b"1"), ("c", b"3")]:
        assert await store.write_stream("w", "me", "k", origin, value) == "written"
    assert await store.read_stream("w", "k", 0, 10) == [(0, b"1"), (1, b"2"), (2, b"3")]
    assert await store.read_stream("w", "k", 1, 1) == [(1, b"2")]
    assert await store.read_stream("w", "other", 0, 10) == []


async def test_a_closed_stream_refuses_values_and_closing_again_is_a_no_op(store):
    await store.write_stream("w", "me", "k", "a", b"1")
    assert await store.write_stream("w", "me", "k", "z", None) == "written"
    assert await store.write_stream("w", "me", "k", "b", b"2") == "closed"
    assert await store.write_stream("w", "me", "k", "z2", None) == "written"
    assert await store.write_stream("w", "me", "k", "a", b"1") == "written"  # replayed
    assert await store.read_stream("w", "k", 0, 10) == [(0, b"1"), (1, None)]


async def test_a_write_is_fenced_and_its_checkpoint_commits_with_it(store):
    assert await store.write_stream("w", "someone-else", "k", "a", b"1") == "lost"
    assert await store.write_stream("w", "me", "k", "1", b"1", record("1", "stream")) \
        == "written"
    assert await store.write_stream("w", "me", "k", "2", b"2", record("2", "stream_close")) \
        == "written"
    assert [(s.position, s.kind) for s in await store.history("w")] == [
        ("1", "stream"), ("2", "stream_close")]
    assert await store.read_stream("w", "k", 0, 10) == [(0, b"1"), (1, b"2")]


async def test_concurrent_writers_of_one_stream_each_get_an_offset(store):
    await asyncio.gather(*(store.write_stream("w", "me", "k", str(i), str(i).encode())
                           for i in range(20)))
    rows = await store.read_stream("w", "k", 0, 100)
    assert sorted(v for _, v in rows) == sorted(str(i).encode() for i in range(20))
    assert [o for o, _ in rows] == sorted({o for o, _ in rows})


async def test_updates_are_stored_once_taken_in_order_and_replied(store):
    await store.send_update("w", "u1", "ask", b"p1")
    await store.send_update("w", "u2", "ask", b"p2")
    await store.send_update("w", "u1", "ask", b"p1")  # a caller's retry: nothing new
    assert await store.update_reply("w", "u1") == (False, None)
    assert await store.take_update("w", "me", "ask", record("1", "update", "ask")) \
        == ("taken", b"p1")
    assert await store.take_update("w", "me", "ask", record("2", "update", "ask")) \
        == ("taken", b"p2")
    assert await store.take_update("w", "me", "ask", record("3", "update", "ask")) \
        == ("none", None)
    assert await store.reply_update("w", "me", "u1", b"r1", record("4", "reply", "ask"))
    assert not await store.reply_update("w", "thief", "u2", b"r2", record("5", "reply", "ask"))
    assert await store.update_reply("w", "u1") == (True, b"r1")
    assert await store.update_reply("w", "u2") == (False, None)
    assert await store.update_reply("w", "nope") == (False, None)


async def test_an_update_to_a_missing_or_finished_workflow_is_refused(store):
    with pytest.raises(legato.WorkflowNotFound):
        await store.send_update("missing", "u", "ask", b"p")
    await store.send_update("w", "before", "ask", b"p")
    assert await store.finish("w", "me", "succeeded", b"1", None, None)
    with pytest.raises(legato.LegatoError, match="has already succeeded"):
        await store.send_update("w", "after", "ask", b"p")
    await store.send_update("w", "before", "ask", b"p")  # sent before the end: a retry is fine
