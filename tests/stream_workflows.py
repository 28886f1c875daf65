"""Workflows of the stream and update tests, shared with the worker process they kill.

A worker started with ``LEGATO_STREAM_HANG=wf:K`` hangs in the workflow's
``tick`` step after its K-th workflow-level write; with ``step:K`` the
streaming step hangs after writing K values. Either prints ``hanging`` first:
the test kills it there. ``LEGATO_TEST_LOG`` counts step bodies that ran.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import legato

CHILD = Path(__file__).parent / "stream_child.py"  # the worker process to kill


def _hang_at(where: str) -> int | None:
    spec = os.environ.get("LEGATO_STREAM_HANG", "")
    kind, _, at = spec.partition(":")
    return int(at) if kind == where else None


async def _hang() -> None:
    print("hanging", flush=True)
    await asyncio.Event().wait()  # until SIGKILL


def _note(name: str) -> None:
    path = os.environ.get("LEGATO_TEST_LOG")
    if path:
        with open(path, "a") as log:
            log.write(name + "\n")


@legato.step
async def tick(i: int) -> int:
    if _hang_at("wf") == i:
        await _hang()
    return i


@legato.step
async def stream_values(n: int) -> int:
    """Writes ``n`` values to stream "step" (as an LLM step writes tokens)."""
    _note("stream_values")
    hang = _hang_at("step")
    async with legato.stream("step") as out:
        for i in range(n):
            if hang == i:
                await _hang()
            await out.write(f"v{i}")
    return n


@legato.workflow(name="streamer")
async def streamer(n: int) -> int:
    """Writes 0..n-1 to stream "wf" from workflow code, then n values from a step."""
    out = legato.stream("wf")
    for i in range(n):
        await out.write(i)
        await tick(i)
    await out.close()
    return await stream_values(n)


@legato.step
async def handled(payload: str) -> str:
    _note(f"handled-{payload}")
    return payload.upper()


@legato.step
async def after_reply(k: int) -> None:
    if _hang_at("reply") == k:
        await _hang()


@legato.workflow(name="update_server")
async def update_server(k: int) -> list[str]:
    """Answers ``k`` updates "shout", then returns what it handled.

    With ``LEGATO_STREAM_HANG=reply:K`` it hangs after its K-th reply.
    """
    seen: list[str] = []
    for i in range(1, k + 1):
        update = await legato.wait_for_update("shout")
        assert update is not None
        seen.append(await handled(update.payload))
        await update.reply(seen[-1])
        await after_reply(i)
    return seen
