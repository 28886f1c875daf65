"""Queue claims on SQLite: limits counted inside the claim's write transaction.

SQLite has one writer at a time across every process sharing the file, and
a claim is one ``BEGIN IMMEDIATE`` transaction, so counting a queue's running
workflows and taking new ones can't interleave with another worker's claim:
the limits hold across processes without locks of our own.

A queue slot is held while a workflow is ``running``. A ``waiting``
(suspended) workflow gives its slot back, like a sleeping workflow in
Temporal or DBOS; when it wakes it needs a free slot again, and takes one
before any pending workflow does. The rate limit counts *starts* (a pending
workflow taken), recorded in ``queue_starts`` by durable time and counted as
a sliding window.

A queue with ``key_concurrency`` runs at most that many workflows per key
(a tenant, a customer) at once, counted in the same transaction, and serves
keys fairly: a claim ranks each key's due workflows (by priority, then age)
and takes them in order of *running + rank*, so the least busy key goes
first and one key's 10,000 queued workflows don't hold back another key's
3. A claim reads each key's first few in line through an index, so its cost
grows with the number of keys, not with the length of any key's line.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from .._errors import DuplicateWorkflow
from ._protocol import WF_COLUMNS, NewWorkflow, QueueLimits, owner_worker

__all__ = ["check_dedup", "claim_queue", "queue_next_wake"]

_ACTIVE = "status IN ('pending', 'running', 'waiting')"


def check_dedup(conn: sqlite3.Connection, wf: NewWorkflow) -> None:
    """Raise :class:`DuplicateWorkflow` if ``wf``'s key is held by another unfinished workflow.

    Run inside the creating transaction, before it writes.
    """
    if wf.dedup_key is None or wf.queue is None:
        return
    row = conn.execute(
        f"SELECT id FROM workflows WHERE queue = ? AND dedup_key = ? AND {_ACTIVE}"
        " AND id != ?", (wf.queue, wf.dedup_key, wf.id)).fetchone()
    if row is not None:
        raise DuplicateWorkflow(wf.queue, wf.dedup_key, row[0])


def claim_queue(
    conn: sqlite3.Connection, q: QueueLimits, *, owner: str, lease_until: float, now: float,
    clock_now: float, room: int, names_json: str,
) -> list[tuple[Any, ...]]:
    """Take up to ``room`` of queue ``q``'s due workflows within its limits; return their rows.

    Rows end with ``None``, as :func:`~._sqlite_due.claim_unqueued`'s: no
    lease is taken over here (lapsed ones, queued or not, are taken there).

    Woken ``waiting`` workflows first (they started already), then ``pending``
    ones, lowest priority number first, then in the order they were enqueued.
    """
    take = room
    worker = owner_worker(owner)  # counting this worker's attempts, whichever claimed them
    if q.caps_running:
        running, mine = conn.execute(
            "SELECT count(*), coalesce(sum(owner = ? OR substr(owner, 1, length(?)) = ?), 0)"
            " FROM workflows WHERE queue = ? AND status = 'running'",
            (worker, worker + "#", worker + "#", q.name)).fetchone()
        take = q.room(room, running, mine)
    if take <= 0:
        return []
    # Read in this order from the workflows_ready_queued (or _fifo) index: only
    # ready ones, which the claim made of what fell due (see _sqlite_due).
    order = "priority, created_at, rowid" if q.priority else "created_at, rowid"
    claim = (owner, lease_until, now)

    def taken(status: str, limit: int) -> list[tuple[Any, ...]]:
        chosen, params = _chosen(conn, q, status, names_json, limit, order)
        rows: list[tuple[Any, ...]] = conn.execute(
            "UPDATE workflows SET status = 'running', owner = ?, lease_until = ?,"
            f" wake_at = NULL, ready = 0, updated_at = ? WHERE rowid IN ({chosen})"
            f" RETURNING {WF_COLUMNS}, NULL", (*claim, *params)).fetchall()
        return rows

    woken = taken("waiting", take)
    take -= len(woken)
    if take > 0 and q.rate is not None:
        count, window = q.rate
        conn.execute("DELETE FROM queue_starts WHERE queue = ? AND at <= ?",
                     (q.name, clock_now - window))
        (used,) = conn.execute("SELECT count(*) FROM queue_starts WHERE queue = ?",
                               (q.name,)).fetchone()
        take = min(take, count - used)
    if take <= 0:
        return woken
    started = taken("pending", take)
    if q.rate is not None and started:
        conn.executemany("INSERT INTO queue_starts (queue, at) VALUES (?, ?)",
                         [(q.name, clock_now)] * len(started))
    return woken + started


def _chosen(conn: sqlite3.Connection, q: QueueLimits, status: str, names_json: str,
            limit: int, order: str) -> tuple[str, tuple[Any, ...]]:
    """The rowids a claim of ``q`` takes among its ready ``status`` ones: SQL and parameters."""
    if q.key_concurrency is None:
        return ("SELECT rowid FROM workflows WHERE queue = ? AND status = ? AND ready = 1"
                f" AND name IN (SELECT value FROM json_each(?)) ORDER BY {order} LIMIT ?",
                (q.name, status, names_json, limit))
    chosen = conn.execute(_KEYED.format(order=order, outer=order.replace("rowid", "r")), {
        "queue": q.name, "status": status, "names": names_json, "limit": limit,
        "per_key": q.key_concurrency}).fetchall()
    return "SELECT value FROM json_each(?)", (json.dumps([r for (r,) in chosen]),)


# Each key's first ``per_key`` in line (its distinct keys found by index seeks, each
# key's line read from workflows_ready_keyed: O(keys), whatever the queue's length),
# ranked; a key's n-th goes after every key's (n-1)-th, counting those running: the
# least busy key first, none past its limit. Keyless ones are one more line.
_KEYED = """
WITH RECURSIVE keys(k) AS (
    SELECT min(key) FROM workflows
    WHERE queue = :queue AND status = :status AND ready = 1 AND key IS NOT NULL
    UNION ALL
    SELECT (SELECT min(key) FROM workflows
            WHERE queue = :queue AND status = :status AND ready = 1 AND key > k)
    FROM keys WHERE k IS NOT NULL
), running AS (
    SELECT key, count(*) AS c FROM workflows
    WHERE queue = :queue AND status = 'running' AND key IS NOT NULL GROUP BY key
), lines AS (
    SELECT w.rowid AS r, w.key, w.priority, w.created_at
    FROM keys JOIN workflows AS w ON w.rowid IN (
        SELECT rowid FROM workflows
        WHERE queue = :queue AND status = :status AND ready = 1 AND key = keys.k
        AND name IN (SELECT value FROM json_each(:names)) ORDER BY {order} LIMIT :per_key)
    WHERE keys.k IS NOT NULL
    UNION ALL
    SELECT * FROM (SELECT rowid, key, priority, created_at FROM workflows
        WHERE queue = :queue AND status = :status AND ready = 1 AND key IS NULL
        AND name IN (SELECT value FROM json_each(:names)) ORDER BY {order} LIMIT :limit)
), ranked AS (
    SELECT *, row_number() OVER (PARTITION BY key ORDER BY {outer}) AS n FROM lines
)
SELECT r FROM ranked LEFT JOIN running USING (key)
WHERE ranked.key IS NULL OR n + coalesce(c, 0) <= :per_key
ORDER BY n + coalesce(c, 0), {outer} LIMIT :limit
"""


def queue_next_wake(
    conn: sqlite3.Connection, clock_now: float, queues: Sequence[QueueLimits]
) -> list[float]:
    """For each rate-limited queue whose window is full with work due: when a start frees."""
    times: list[float] = []
    for q in queues:
        if q.rate is None:
            continue
        count, window = q.rate
        used, oldest = conn.execute(
            "SELECT count(*), min(at) FROM queue_starts WHERE queue = ? AND at > ?",
            (q.name, clock_now - window)).fetchone()
        if used < count or oldest is None:
            continue
        due = conn.execute(
            "SELECT 1 FROM workflows WHERE queue = ? AND status = 'pending' AND ready = 1"
            " UNION ALL SELECT 1 FROM workflows WHERE due_at <= ? AND queue = ?"
            " AND status = 'pending' LIMIT 1", (q.name, clock_now, q.name)).fetchone()
        if due is not None:
            times.append(float(oldest) + window)
    return times
