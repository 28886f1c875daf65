"""Debounced starts on SQLite: a burst of starts with one key becomes one pending run.

One write transaction (SQLite has one writer across processes) either folds
the start into the pending run that holds the key (its input becomes the
latest, its ``not_before`` moves to the new end of the window, capped by the
first start's ``debounce_until``) or inserts a new pending run holding it.
The unique index ``workflows_debounce`` keeps one pending run per workflow
name and key, whatever the processes. A run holds its key until it first
starts: ``debounce_run`` is its run id then, and a resumed run (pending
again, under a new run id) takes no starts into it.
"""

from __future__ import annotations

import sqlite3

from ._protocol import WF_COLUMNS, NewWorkflow, WorkflowRecord, news_of_start
from ._sqlite_news import announce

__all__ = ["debounce"]


def debounce(conn: sqlite3.Connection, wf: NewWorkflow, key: str, until: float | None,
             now: float) -> WorkflowRecord | None:
    """Fold ``wf`` into the pending run holding ``key``, or insert it; see ``Store.debounce``."""
    assert wf.not_before is not None, "a debounced start has the end of its window"
    row = conn.execute(
        "UPDATE workflows SET input = ?, deadline = ?, updated_at = ?, ready = 0,"
        " not_before = min(?, coalesce(debounce_until, ?))"
        " WHERE name = ? AND debounce_key = ? AND status = 'pending' AND run_id = debounce_run"
        f" RETURNING {WF_COLUMNS}",
        (wf.input, wf.deadline, now, wf.not_before, wf.not_before, wf.name, key)).fetchone()
    if row is not None:
        return WorkflowRecord(*row)
    inserted = conn.execute(
        "INSERT INTO workflows (id, name, status, input, owner, lease_until, parent_id,"
        " deadline, created_at, updated_at, queue, priority, not_before, run_id, ready,"
        " debounce_key, debounce_run, debounce_until, key)"
        " VALUES (?, ?, 'pending', ?, NULL, 0, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?)"
        " ON CONFLICT (id) DO NOTHING",
        (wf.id, wf.name, wf.input, wf.parent_id, wf.deadline, now, now, wf.queue, wf.priority,
         wf.not_before, wf.run_id, key, wf.run_id, until, wf.key)).rowcount
    if not inserted:
        found = conn.execute(
            f"SELECT {WF_COLUMNS} FROM workflows WHERE id = ?", (wf.id,)).fetchone()
        return WorkflowRecord(*found)
    announce(conn, news_of_start(wf), wf.id)
    return None
