"""SIGKILL a worker during its 3rd of 3 model calls: recovery makes exactly 1 more request.

The model server (a real ScriptedModel on 127.0.0.1) runs in the test process
and counts requests; the worker is a real subprocess on a SQLite file.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path

import llm_workflows
import pytest

import legato
from legato.agents import OpenAIChat, set_model
from legato.agents.testing import ScriptedModel

KEY = "sk-crash-test-93b1d0c47e5a2f68"
CHILD = Path(__file__).parent / "llm_child.py"


def stored_bytes(db: str) -> bytes:
    """The database file and its write-ahead log, as they are on disk."""
    return b"".join(Path(db + suffix).read_bytes() for suffix in ("", "-wal")
                    if Path(db + suffix).exists())


@pytest.fixture
def server():
    with ScriptedModel(api_key=KEY) as s:
        yield s


async def test_sigkill_during_third_call_recovers_with_one_more_request(
    server, sqlite_db, caplog
):
    server.hold("third")  # the 3rd call reaches the server and gets no answer
    env = {**os.environ, "OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": KEY}
    worker = await asyncio.create_subprocess_exec(
        sys.executable, str(CHILD), sqlite_db, "llm-crash",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    try:
        await server.wait_for_async(3)  # calls 1 and 2 answered and recorded; 3 in flight
    finally:
        worker.kill()  # SIGKILL
        output, _ = await asyncio.wait_for(worker.communicate(), 10)
    assert b"started" in output
    assert b"HTTP Request: POST" in output  # the DEBUG logs are there to search
    assert [r.model for r in server.requests] == ["first", "second", "third"]
    on_disk = stored_bytes(sqlite_db)
    assert b"echo: question for second" in on_disk  # what we grep is really there
    assert KEY.encode() not in on_disk

    server.release()
    caplog.set_level(logging.DEBUG)
    set_model(OpenAIChat(server.base_url, KEY))  # this process's worker configuration
    try:
        async with legato.Runtime(sqlite_db) as rt:
            result = await rt.handle("llm-crash").result(timeout=15)
            info = await rt.get("llm-crash")
    finally:
        set_model(None)

    assert result == [f"echo: question for {m}" for m in llm_workflows.MODELS]
    assert server.count == 4  # only the call in flight at the kill was made again
    assert [r.model for r in server.requests[3:]] == ["third"]
    assert info.status == legato.Status.SUCCEEDED
    assert KEY.encode() not in stored_bytes(sqlite_db)
    assert KEY.encode() not in output  # the worker's DEBUG logs, httpx's included
    assert KEY not in caplog.text
    assert KEY not in repr(info)
