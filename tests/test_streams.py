"""Durable streams: `legato.stream(key)` in workflows and steps, `handle.stream(key)` to read."""

from __future__ import annotations

import asyncio

import pytest

import legato
import stream_workflows
from hygiene import hygiene  # noqa: F401  (each test ends with no leaked task)

TESTS_N = 6


@legato.step
async def echo(value: int) -> int:
    return value


@legato.workflow(name="gated_streamer")
async def gated_streamer(n: int) -> str:
    """Writes n values, waits for signal "more", writes n more, closes."""
    out = legato.stream("numbers")
    for i in range(n):
        await out.write(i)
    await legato.wait_for_signal("more")
    for i in range(n, 2 * n):
        await out.write(await echo(i))
    await out.close()
    return "done"


@legato.workflow(name="unclosed_streamer")
async def unclosed_streamer() -> int:
    out = legato.stream("progress")
    await out.write({"done": 1})
    await out.write({"done": 2})
    return 2  # no close(): readers end with the workflow


async def read_all(rt: legato.Runtime, workflow_id: str, key: str, offset: int = 0) -> list:
    return [value async for value in rt.handle(workflow_id).stream(key, offset)]


async def test_a_reader_attached_before_the_workflow_starts_sees_every_value(db):
    async with legato.Runtime(db) as rt:
        reader = asyncio.create_task(read_all(rt, "s-before", "numbers"))
        await asyncio.sleep(0)  # the reader waits for an id not stored yet
        handle = await rt.start(gated_streamer, 3, id="s-before")
        await rt.signal("s-before", "more")
        assert await asyncio.wait_for(reader, 10) == [0, 1, 2, 3, 4, 5]
        assert await handle.result() == "done"


async def test_a_reader_attached_during_the_stream_starts_from_the_beginning(db):
    async with legato.Runtime(db) as rt:
        handle = await rt.start(gated_streamer, 3, id="s-during")
        values = handle.stream("numbers")
        seen = []
        async for value in values:
            seen.append(value)
            if value == 2:  # the workflow now waits for "more"
                await rt.signal("s-during", "more")
        assert seen == [0, 1, 2, 3, 4, 5]
        assert values.offset == 6


async def test_a_reader_attached_after_the_end_and_from_an_offset(db):
    async with legato.Runtime(db) as rt:
        handle = await rt.start(gated_streamer, 2, id="s-after")
        await rt.signal("s-after", "more")
        await handle.result()
        assert await read_all(rt, "s-after", "numbers") == [0, 1, 2, 3]
        assert await read_all(rt, "s-after", "numbers", offset=3) == [3]
        assert await read_all(rt, "s-after", "numbers", offset=9) == []
        assert await read_all(rt, "s-after", "nothing-here") == []


async def test_a_stream_never_closed_ends_when_the_workflow_does(db):
    async with legato.Runtime(db) as rt:
        await rt.start(unclosed_streamer, id="s-unclosed")
        assert await read_all(rt, "s-unclosed", "progress") == [{"done": 1}, {"done": 2}]


async def test_a_client_without_a_worker_reads_what_another_runtime_writes(db):
    async with legato.Runtime(db) as worker, legato.Runtime(db, worker=False) as client:
        await worker.start(gated_streamer, 2, id="s-client")
        reader = asyncio.create_task(read_all(client, "s-client", "numbers"))
        await client.signal("s-client", "more")
        assert await asyncio.wait_for(reader, 10) == [0, 1, 2, 3]


@legato.workflow(name="writes_after_close")
async def writes_after_close() -> str:
    out = legato.stream("k")
    await out.write(1)
    await out.close()
    await out.close()  # closing twice is a no-op
    try:
        await out.write(2)
    except legato.StreamClosed as exc:
        return str(exc)
    return "written"


async def test_a_write_after_close_raises_stream_closed(db):
    async with legato.Runtime(db) as rt:
        message = await rt.run(writes_after_close, id="s-closed")
        assert "is closed" in message
        assert await read_all(rt, "s-closed", "k") == [1]


attempts: list[int] = []


@legato.step(retry=legato.Retry(attempts=2, initial=0.01, jitter=0))
async def flaky_tokens() -> str:
    """Attempt 1 writes a, b and fails; attempt 2 writes a, b, c, d."""
    attempts.append(1)
    first = len(attempts) == 1
    async with legato.stream("tokens") as tokens:  # an error leaves it open for the retry
        for token in ["a", "b"] if first else ["a", "b", "c", "d"]:
            await tokens.write(token)
        if first:
            raise ConnectionError("dropped mid-stream")
    return "abcd"


@legato.workflow(name="retried_stream")
async def retried_stream() -> str:
    return await flaky_tokens()


async def test_a_retried_step_does_not_write_its_earlier_values_twice(db):
    attempts.clear()
    async with legato.Runtime(db, clock=legato.VirtualClock()) as rt:
        assert await rt.run(retried_stream, id="s-retry") == "abcd"
        assert await read_all(rt, "s-retry", "tokens") == ["a", "b", "c", "d"]
    assert len(attempts) == 2


@legato.step(name="llm_answer")
async def llm_answer(base_url: str, question: str) -> str:
    from legato.agents import OpenAIChat

    text = ""
    async with OpenAIChat(base_url) as client, legato.stream("tokens") as tokens:
        async for piece in client.stream(question, model="m"):
            await tokens.write(piece)
            text += piece
    return text


@legato.workflow(name="llm_streamer")
async def llm_streamer(base_url: str) -> str:
    return await llm_answer(base_url, "Capital of France?")


async def test_llm_tokens_stream_to_the_client_and_the_text_is_recorded_once(db):
    from legato.agents.testing import ScriptedModel

    with ScriptedModel({"m": "The capital of France is Paris."}) as server:
        async with legato.Runtime(db) as rt:
            handle = await rt.start(llm_streamer, server.base_url, id="s-llm")
            pieces = [p async for p in handle.stream("tokens")]
            assert await handle.result() == "The capital of France is Paris."
            info = await rt.get("s-llm")
        assert len(pieces) > 1  # streamed piece by piece, not as one value
        assert "".join(pieces) == "The capital of France is Paris."
        assert server.count == 1
        assert [s.name for s in info.steps if s.kind == "step"] == ["llm_answer"]


async def test_stream_misuse_gets_clear_errors(db):
    with pytest.raises(ValueError, match="non-empty string"):
        legato.stream("")
    with pytest.raises(legato.LegatoError, match="outside a workflow"):
        await legato.stream("k").write(1)
    async with legato.Runtime(db) as rt:
        with pytest.raises(ValueError, match="offset"):
            rt.handle("x").stream("k", offset=-1)
        with pytest.raises(ValueError, match="non-empty"):
            rt.handle("x").stream("")


@pytest.mark.parametrize("hang", [
    "wf:3",  # killed between writes from workflow code
    "step:4",  # killed inside a step that streams
])
async def test_sigkill_mid_stream_the_reader_sees_every_value_once_in_order(
        db, child, log, hang):
    """The worker dies mid-stream; a reader in this process sees each value once."""
    worker = child(db, "streamer", "s-kill", str(TESTS_N),
                   script=stream_workflows.CHILD, env={"LEGATO_STREAM_HANG": hang})
    async with legato.Runtime(db, worker=False) as client:
        wf = asyncio.create_task(read_all(client, "s-kill", "wf"))
        step = asyncio.create_task(read_all(client, "s-kill", "step"))
        await asyncio.to_thread(worker.wait_for, "hanging")
        worker.kill()
        async with legato.Runtime(db) as recovery:
            assert await recovery.handle("s-kill").result(timeout=10) == TESTS_N
        assert await asyncio.wait_for(wf, 10) == list(range(TESTS_N))
        assert await asyncio.wait_for(step, 10) == [f"v{i}" for i in range(TESTS_N)]
    ran = log.read_text().split()
    assert ran.count("stream_values") == (2 if hang.startswith("step") else 1)
