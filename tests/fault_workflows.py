"""Workflows for the machine-fault suite (``test_fault_suite.py``).

Served by ``python -m legato worker fault_workflows`` processes and, in some
tests, by the test's own Runtime. Each step body appends
``"<workflow id>-<position> <pid> <began>"`` (``began``: ``time.time()`` as the
body starts) to the file named by ``LEGATO_TEST_LOG``, so a test can count
the runs of each step, tell which process ran them, and compare when they
began with when their outcome was recorded (``StepRecord.created_at``).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import legato


def _note(key: str) -> None:
    with open(os.environ["LEGATO_TEST_LOG"], "a") as log:
        log.write(f"{key} {os.getpid()} {time.time():.6f}\n")


@legato.step
async def fault_step(workflow_id: str, i: int, seconds: float) -> int:
    _note(f"{workflow_id}-{i}")
    if seconds:
        await asyncio.sleep(seconds)
    return i


@legato.workflow(name="fault_steps")
async def steps(workflow_id: str, count: int, seconds: float) -> list[int]:
    """``count`` steps one after another, each ``seconds`` long: ``[1, ..., count]``.

    ``workflow_id`` is the workflow's own id (so each step's log line names it).
    """
    return [await fault_step(workflow_id, i, seconds) for i in range(1, count + 1)]


@legato.step
async def token_step(workflow_id: str) -> str:
    _note(f"{workflow_id}-1")
    return f"{os.getpid()}:{uuid.uuid4().hex}"


@legato.workflow(name="fault_token")
async def token(workflow_id: str) -> str:
    """One step whose recorded result names the run: ``"<pid>:<random hex>"``."""
    return await token_step(workflow_id)


@legato.step
async def pid_step(workflow_id: str) -> int:
    _note(f"{workflow_id}-1")
    return os.getpid()


@legato.workflow(name="fault_probe")
async def probe(workflow_id: str) -> int:
    """The pid of the worker that ran it (started on the queue only that worker serves)."""
    return await pid_step(workflow_id)
