"""Updates on SQLite: requests a workflow answers (see ``Updates`` in ``_protocol``).

An update is a row ``(workflow_id, id, name, payload)``; a workflow takes the
oldest untaken one of a name (``taken_at`` is the position of the take, whose
checkpoint holds the payload), and its reply is stored on the same row in the
transaction that records the reply's checkpoint.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

from .._errors import LegatoError, WorkflowNotFound
from ._protocol import StepRecord
from ._sqlite_news import announce

__all__ = ["REPLY_SQL", "reply_op", "send_op", "take_op"]

_FINISHED = ("succeeded", "failed", "cancelled")
REPLY_SQL = "SELECT replied_at IS NOT NULL, reply FROM updates WHERE workflow_id = ? AND id = ?"
_FENCED_STEP = (
    "INSERT INTO steps (workflow_id, position, kind, name, ok, value, created_at)"
    " SELECT ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM workflows"
    " WHERE id = ? AND owner = ? AND status = 'running')")


def _insert_step(conn: sqlite3.Connection, workflow_id: str, owner: str, step: StepRecord,
                 value: bytes | None) -> bool:
    return conn.execute(_FENCED_STEP, (
        workflow_id, step.position, step.kind, step.name, step.ok, value, step.created_at,
        workflow_id, owner)).rowcount == 1


def send_op(workflow_id: str, update_id: str, name: str, payload: bytes,
            wake: Callable[[sqlite3.Connection, str], None]
            ) -> Callable[[sqlite3.Connection], None]:
    """The operation of :meth:`SqliteStore.send_update`; ``wake`` wakes a waiting workflow."""

    def op(conn: sqlite3.Connection) -> None:
        if conn.execute("SELECT 1 FROM updates WHERE workflow_id = ? AND id = ?",
                        (workflow_id, update_id)).fetchone() is not None:
            return  # sent before (a caller's retry): its reply is what it waits for
        row = conn.execute("SELECT status FROM workflows WHERE id = ?", (workflow_id,)).fetchone()
        if row is None:
            raise WorkflowNotFound(workflow_id)
        if row[0] in _FINISHED:
            raise LegatoError(
                f"workflow {workflow_id!r} has already {row[0]}; update {name!r} was not "
                "stored. Check handle.status() before sending an update")
        conn.execute("INSERT INTO updates (workflow_id, id, name, payload, created_at)"
                     " VALUES (?, ?, ?, ?, ?)",
                     (workflow_id, update_id, name, payload, time.time()))
        announce(conn, "signal", workflow_id)
        wake(conn, workflow_id)

    return op


def take_op(workflow_id: str, owner: str, name: str, step: StepRecord
            ) -> Callable[[sqlite3.Connection], tuple[str, bytes | None]]:
    """The operation of :meth:`SqliteStore.take_update`."""

    def op(conn: sqlite3.Connection) -> tuple[str, bytes | None]:
        row = conn.execute(
            "SELECT seq, payload FROM updates WHERE workflow_id = ? AND name = ?"
            " AND taken_at IS NULL ORDER BY seq LIMIT 1", (workflow_id, name)).fetchone()
        if row is None:
            return "none", None
        if not _insert_step(conn, workflow_id, owner, step, row[1]):
            return "lost", None
        conn.execute("UPDATE updates SET taken_at = ? WHERE seq = ?", (step.position, row[0]))
        return "taken", row[1]

    return op


def reply_op(workflow_id: str, owner: str, update_id: str, reply: bytes, step: StepRecord
             ) -> Callable[[sqlite3.Connection], bool]:
    """The operation of :meth:`SqliteStore.reply_update`."""

    def op(conn: sqlite3.Connection) -> bool:
        if not _insert_step(conn, workflow_id, owner, step, None):
            return False
        conn.execute("UPDATE updates SET reply = ?, replied_at = ? WHERE workflow_id = ?"
                     " AND id = ? AND replied_at IS NULL",
                     (reply, time.time(), workflow_id, update_id))
        announce(conn, "event", workflow_id)  # wakes the caller, in whichever process
        return True

    return op
