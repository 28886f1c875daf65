"""Debounced starts on PostgreSQL: a burst of starts with one key becomes one pending run.

As on SQLite (see ``_sqlite_debounce``): the start folds into the pending
run holding the key, or inserts a new one. Two processes may both find no
pending run and both insert: the unique index ``workflows_debounce`` lets one
in and the other's ``ON CONFLICT DO NOTHING`` then folds into it, on the next
pass. A claim taking the run meanwhile makes the ``UPDATE`` (re-checked after
the row's lock) miss it: the start then begins a new run, as it should.
"""

from __future__ import annotations

from typing import Any, Final

from .._errors import StoreError
from ._postgres_claims import _ANNOUNCE
from ._protocol import WF_COLUMNS, NewWorkflow, WorkflowRecord, news_of_start

__all__ = ["debounce"]

_PASSES: Final = 3  # a pass loses only to a start or a claim of another process

_FOLD = (
    "UPDATE workflows SET input = $1, deadline = $2, updated_at = $3, ready = false,"
    " not_before = LEAST($4, debounce_until)"
    " WHERE name = $5 AND debounce_key = $6 AND status = 'pending' AND run_id = debounce_run"
    f" RETURNING {WF_COLUMNS}")

# $1 the news channel; announced in the same statement, as a created pending run is
_INSERT = (
    "WITH w AS (INSERT INTO workflows (id, name, status, input, owner, lease_until, parent_id,"
    " deadline, created_at, updated_at, queue, priority, not_before, run_id, ready,"
    " debounce_key, debounce_run, debounce_until, key)"
    " VALUES ($3, $4, 'pending', $5, NULL, 0, $6, $7, $8, $8, $9, $10, $11, $12, false,"
    f" $13, $12, $14, $15) ON CONFLICT DO NOTHING RETURNING id) {_ANNOUNCE}")


async def debounce(conn: Any, channel: str, wf: NewWorkflow, key: str, until: float | None,
                   now: float) -> WorkflowRecord | None:
    """Fold ``wf`` into the pending run holding ``key``, or insert it; see ``Store.debounce``."""
    for _ in range(_PASSES):
        row = await conn.fetchrow(_FOLD, wf.input, wf.deadline, now, wf.not_before, wf.name, key)
        if row is not None:
            return WorkflowRecord(*row)
        if await conn.fetchval(
                _INSERT, channel, news_of_start(wf), wf.id, wf.name, wf.input, wf.parent_id,
                wf.deadline, now, wf.queue, wf.priority, wf.not_before, wf.run_id, key, until,
                wf.key):
            return None
        found = await conn.fetchrow(f"SELECT {WF_COLUMNS} FROM workflows WHERE id = $1", wf.id)
        if found is not None:  # the id is taken: that run is the answer, as for create
            return WorkflowRecord(*found)
    raise StoreError(f"could not debounce workflow {wf.id!r} (key {key!r}): the key's pending "
                     "run kept changing; try again")
