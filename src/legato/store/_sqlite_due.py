"""What is due, read through indexes on SQLite: claims and ``next_wake`` cost O(due).

A pending or waiting workflow is *ready* (``ready = 1``) when it may be
claimed whatever the time: enqueued without a delay, woken by news, resumed.
One that is not ready yet has a ``due_at``, a virtual column SQLite computes
from the row (``not_before``; the earlier of ``wake_at`` and ``deadline``),
indexed only where it is set. So:

- ``next_wake`` is the smallest ``due_at`` after a time: one index probe;
- a claim first marks ready what fell due by now (:func:`promote`, through
  the ``due_at`` index, at most :data:`PROMOTE_MAX` at a time, earliest
  first), then takes the ready ones in claim order (lower priority first, then age)
  straight from an index in that order: it reads what it takes, not every
  waiting workflow. Each workflow is promoted once and claimed once, so
  waking N sleepers costs the same per workflow at any N.

Lapsed leases (``running``, ``lease_until`` before now, in real time) are
read through the status index, as before. ``ready`` is kept by the writes
of this store: set on create (no delay), resume and wake-up; cleared by a
claim, a finish, a cancellation of a pending one.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any, Final

from ._protocol import WF_COLUMNS, owner_worker

__all__ = ["CLAIMED_FRESH", "PROMOTE_MAX", "claim_unqueued", "claimable", "next_due", "promote"]

# Workflows made ready per claim at most: bounds a claim's time on the event
# loop when many fall due at once (100,000 sleepers woken by one clock jump);
# the rest follow at the next claims, earliest due first.
PROMOTE_MAX: Final = 1000
# The last column of a claimed row, Claimed.fresh: an index probe of the steps' key.
# Exact here: SQLite's writers take turns, so the claim sees every checkpoint made.
CLAIMED_FRESH: Final = "NOT EXISTS (SELECT 1 FROM steps WHERE steps.workflow_id = workflows.id)"


def promote(conn: sqlite3.Connection, clock_now: float) -> int:
    """Mark ready the workflows due at ``clock_now`` (up to :data:`PROMOTE_MAX`); how many."""
    return conn.execute(
        "UPDATE workflows SET ready = 1 WHERE rowid IN (SELECT rowid FROM workflows"
        " WHERE due_at <= ? ORDER BY due_at LIMIT ?)", (clock_now, PROMOTE_MAX)).rowcount


# A lapsed lease of an attempt the claiming worker runs (ClaimRequest.running), not taken
_RUNNING_HERE = "coalesce(owner, '') IN (SELECT value FROM json_each(?))"


def claim_unqueued(
    conn: sqlite3.Connection, *, owner: str, lease_until: float, now: float, limit: int,
    names_json: str, running_json: str = "[]",
) -> list[tuple[Any, ...]]:
    """Take up to ``limit`` ready unqueued workflows and lapsed leases, in claim order.

    Each row is the workflow's columns, the attempt whose lapsed lease was
    taken over (``None`` if none; a recovery unless the attempt was this
    worker's own), then whether it has no checkpoints (``Claimed.fresh``).
    """
    # Chosen first, then taken by rowid: SQLite runs ``UPDATE ... RETURNING`` over
    # this compound subquery 20x slower (120 µs) than the two statements.
    chosen = conn.execute(
        "SELECT r, i, o FROM ("
        " SELECT * FROM (SELECT rowid AS r, id AS i, NULL AS o, priority AS p,"
        "  created_at AS c FROM workflows"
        "  WHERE ready = 1 AND queue IS NULL AND name IN (SELECT value FROM json_each(?))"
        "  ORDER BY priority, created_at LIMIT ?)"
        " UNION ALL"
        " SELECT * FROM (SELECT rowid, id, owner, priority, created_at FROM workflows"
        "  WHERE status = 'running' AND lease_until < ?"
        "  AND name IN (SELECT value FROM json_each(?))"
        f"  AND NOT {_RUNNING_HERE}"
        "  ORDER BY priority, created_at LIMIT ?)"
        ") ORDER BY p, c LIMIT ?",
        (names_json, limit, now, names_json, running_json, limit, limit)
    ).fetchall()
    if not chosen:
        return []
    mine = owner_worker(owner) + "#"
    # SET reads the row as it was: a recovery when another worker's attempt held it
    rows: list[tuple[Any, ...]] = conn.execute(
        "UPDATE workflows SET status = 'running', owner = ?, lease_until = ?, wake_at = NULL,"
        " ready = 0, updated_at = ?, recoveries = recoveries + (status = 'running'"
        " AND owner IS NOT NULL AND substr(owner, 1, length(?)) != ?)"
        " WHERE rowid IN (SELECT value FROM json_each(?))"
        f" RETURNING {WF_COLUMNS}, {CLAIMED_FRESH}",
        (owner, lease_until, now, mine, mine, json.dumps([r for r, _, _ in chosen]))).fetchall()
    previous = {i: o for _, i, o in chosen}
    return [(*row[:-1], previous[row[0]], row[-1]) for row in rows]


def claimable(conn: sqlite3.Connection, *, now: float, clock_now: float, names_json: str,
              running_json: str = "[]") -> bool:
    """Whether a claim without queues could take anything: due, ready, or a lapsed lease.

    Three index probes, outside any transaction (5-8 µs): a claim that would
    take nothing (most, once a worker is idle) skips its write transaction.
    """
    (found,) = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM workflows WHERE due_at <= ?)"
        " OR EXISTS (SELECT 1 FROM workflows WHERE ready = 1 AND queue IS NULL"
        "  AND name IN (SELECT value FROM json_each(?)))"
        " OR EXISTS (SELECT 1 FROM workflows WHERE status = 'running' AND lease_until < ?"
        f"  AND name IN (SELECT value FROM json_each(?)) AND NOT {_RUNNING_HERE})",
        (clock_now, names_json, now, names_json, running_json)).fetchone()
    return bool(found)


def next_due(conn: sqlite3.Connection, after: float) -> float | None:
    """The earliest ``due_at`` after ``after``, or ``None``."""
    (due,) = conn.execute(
        "SELECT min(due_at) FROM workflows WHERE due_at > ?", (after,)).fetchone()
    return None if due is None else float(due)
