"""Streams on PostgreSQL: the write transaction and the read (see ``_sqlite_streams``).

Writers of one stream may be on several connections (two steps of a
workflow, run at once): an advisory lock per stream, taken before the last
offset is read, gives each write the next offset and no write is lost to a
duplicate one. The fence reads the workflow row ``FOR SHARE``, so a
takeover's ``UPDATE`` waits for the write (as ``set_event``'s does).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["READ_SQL", "Rows", "write"]

#: ``(offset, value)`` pairs; a value ``None`` is the close marker
Rows = list[tuple[int, bytes | None]]

READ_SQL = ("SELECT seq, value FROM streams WHERE workflow_id = $1 AND key = $2 AND seq >= $3"
            " ORDER BY seq LIMIT $4")


async def write(conn: Any, notify: Callable[[Any, str, str], Awaitable[None]],
                workflow_id: str, owner: str, key: str, origin: str,
                value: bytes | None) -> str:
    """The body of :meth:`PostgresStore.write_stream`, in its transaction."""
    if await conn.fetchval(
            "SELECT 1 FROM workflows WHERE id = $1 AND owner = $2 AND status = 'running'"
            " FOR SHARE", workflow_id, owner) is None:
        return "lost"
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 7))",
                       f"legato.stream {workflow_id} {key}")
    if await conn.fetchval(
            "SELECT 1 FROM streams WHERE workflow_id = $1 AND key = $2 AND origin = $3",
            workflow_id, key, origin) is not None:
        return "written"  # a replayed or re-run write: it is there already
    last = await conn.fetchrow(
        "SELECT seq, value IS NULL AS closed FROM streams WHERE workflow_id = $1 AND key = $2"
        " ORDER BY seq DESC LIMIT 1", workflow_id, key)
    if last is not None and last["closed"]:
        return "closed"
    await conn.execute(
        "INSERT INTO streams (workflow_id, key, seq, origin, value, created_at)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        workflow_id, key, 0 if last is None else last["seq"] + 1, origin, value, time.time())
    await notify(conn, "event", workflow_id)
    return "written"
