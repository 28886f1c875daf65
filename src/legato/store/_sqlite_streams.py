"""Streams on SQLite: the writes (one transaction each, in the group commit) and the reads.

A stream is rows ``(workflow_id, key, seq, origin, value)``; ``seq`` is the
offset, the next one after the stream's last row, assigned inside the write
transaction (SQLite has one writer, so two writes never get one offset).
``origin`` names the write (see ``Streams.write_stream``): a write whose origin
is there already is a no-op. A row whose value is ``NULL`` closes the stream.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

from ._protocol import StepRecord
from ._sqlite_news import announce

__all__ = ["READ_SQL", "Rows", "write_op"]

#: ``(offset, value)`` pairs; a value ``None`` is the close marker
Rows = list[tuple[int, bytes | None]]

READ_SQL = ("SELECT seq, value FROM streams WHERE workflow_id = ? AND key = ? AND seq >= ?"
            " ORDER BY seq LIMIT ?")


def write_op(workflow_id: str, owner: str, key: str, origin: str, value: bytes | None,
             step: StepRecord | None) -> Callable[[sqlite3.Connection], str]:
    """The group-commit operation of :meth:`SqliteStore.write_stream`."""

    def op(conn: sqlite3.Connection) -> str:
        if conn.execute("SELECT 1 FROM workflows WHERE id = ? AND owner = ? AND status = 'running'",
                        (workflow_id, owner)).fetchone() is None:
            return "lost"
        outcome = _append(conn, workflow_id, key, origin, value)
        if step is not None and (outcome == "written" or value is None):
            conn.execute(
                "INSERT INTO steps (workflow_id, position, kind, name, ok, value, created_at)"
                " VALUES (?, ?, ?, ?, 1, NULL, ?)",
                (workflow_id, step.position, step.kind, step.name, step.created_at))
        return "written" if value is None else outcome

    return op


def _append(conn: sqlite3.Connection, workflow_id: str, key: str, origin: str,
            value: bytes | None) -> str:
    if conn.execute("SELECT 1 FROM streams WHERE workflow_id = ? AND key = ? AND origin = ?",
                    (workflow_id, key, origin)).fetchone() is not None:
        return "written"  # a replayed or re-run write: it is there already
    last = conn.execute(
        "SELECT seq, value IS NULL FROM streams WHERE workflow_id = ? AND key = ?"
        " ORDER BY seq DESC LIMIT 1", (workflow_id, key)).fetchone()
    if last is not None and last[1]:
        return "closed"
    conn.execute(
        "INSERT INTO streams (workflow_id, key, seq, origin, value, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (workflow_id, key, 0 if last is None else last[0] + 1, origin, value, time.time()))
    announce(conn, "event", workflow_id)  # wakes readers in every process
    return "written"
