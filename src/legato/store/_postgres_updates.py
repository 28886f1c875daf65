"""Updates on PostgreSQL: the bodies of their transactions (see ``_sqlite_updates``)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from .._errors import LegatoError, WorkflowNotFound
from ._protocol import StepRecord

__all__ = ["REPLY_SQL", "reply", "send", "take"]

_FINISHED = ("succeeded", "failed", "cancelled")
REPLY_SQL = ("SELECT replied_at IS NOT NULL, reply FROM updates"
             " WHERE workflow_id = $1 AND id = $2")

Notify = Callable[[Any, str, str], Awaitable[None]]
InsertStep = Callable[[Any, str, str, StepRecord, "bytes | None"], Awaitable[bool]]


async def send(conn: Any, notify: Notify, wake: Callable[[Any, str], Awaitable[None]],
               workflow_id: str, update_id: str, name: str, payload: bytes) -> None:
    """The body of :meth:`PostgresStore.send_update`."""
    # FOR UPDATE: a concurrent suspend of the workflow sees this update (as a signal's send)
    status = await conn.fetchval("SELECT status FROM workflows WHERE id = $1 FOR UPDATE",
                                 workflow_id)
    if status is None:
        raise WorkflowNotFound(workflow_id)
    if await conn.fetchval("SELECT 1 FROM updates WHERE workflow_id = $1 AND id = $2",
                           workflow_id, update_id) is not None:
        return  # sent before (a caller's retry): its reply is what it waits for
    if status in _FINISHED:
        raise LegatoError(
            f"workflow {workflow_id!r} has already {status}; update {name!r} was not "
            "stored. Check handle.status() before sending an update")
    await conn.execute("INSERT INTO updates (workflow_id, id, name, payload, created_at)"
                       " VALUES ($1, $2, $3, $4, $5)",
                       workflow_id, update_id, name, payload, time.time())
    await notify(conn, "signal", workflow_id)
    await wake(conn, workflow_id)


async def take(conn: Any, insert_step: InsertStep, workflow_id: str, owner: str, name: str,
               step: StepRecord) -> tuple[str, bytes | None]:
    """The body of :meth:`PostgresStore.take_update`."""
    row = await conn.fetchrow(
        "SELECT seq, payload FROM updates WHERE workflow_id = $1 AND name = $2"
        " AND taken_at IS NULL ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED", workflow_id, name)
    if row is None:
        return "none", None
    if not await insert_step(conn, workflow_id, owner, step, row[1]):
        return "lost", None
    await conn.execute("UPDATE updates SET taken_at = $1 WHERE seq = $2", step.position, row[0])
    return "taken", row[1]


async def reply(conn: Any, notify: Notify, insert_step: InsertStep, workflow_id: str,
                owner: str, update_id: str, value: bytes, step: StepRecord) -> bool:
    """The body of :meth:`PostgresStore.reply_update`."""
    if not await insert_step(conn, workflow_id, owner, step, None):
        return False
    await conn.execute("UPDATE updates SET reply = $1, replied_at = $2 WHERE workflow_id = $3"
                       " AND id = $4 AND replied_at IS NULL",
                       value, time.time(), workflow_id, update_id)
    await notify(conn, "event", workflow_id)  # wakes the caller, in whichever process
    return True
