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

A *keyed* queue (``key_concurrency``, ``key_rate``) limits runs per key (a
tenant, a customer) and serves its keys round-robin, so one key's 10,000
queued workflows don't hold back another key's 3. The keys with ready work
are rows of ``queue_keys``, counted by triggers on ``workflows`` (so every
write that makes a keyed workflow ready, or takes it, keeps them right), in
the order they are served: a claim walks that order through an index,
skipping keys at their limit, and a key it takes from goes to the back. A
claim so reads the keys it serves (plus those at their limit, which hold
running workflows), not every key; a key whose rate window is full leaves
the line (``open_at``) until the window frees.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any, Final

from .._errors import DuplicateWorkflow
from ._protocol import WF_COLUMNS, NewWorkflow, QueueLimits, owner_worker
from ._sqlite_due import CLAIMED_FRESH

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
        keys: list[str] = []
        params: tuple[Any, ...]
        if q.keyed:
            rowids, keys = _keyed_chosen(conn, q, status, names_json, limit, order, clock_now)
            chosen, params = "SELECT value FROM json_each(?)", (json.dumps(rowids),)
        else:
            chosen = ("SELECT rowid FROM workflows WHERE queue = ? AND status = ? AND ready = 1"
                      f" AND name IN (SELECT value FROM json_each(?)) ORDER BY {order} LIMIT ?")
            params = (q.name, status, names_json, limit)
        rows: list[tuple[Any, ...]] = conn.execute(
            "UPDATE workflows SET status = 'running', owner = ?, lease_until = ?,"
            f" wake_at = NULL, ready = 0, updated_at = ? WHERE rowid IN ({chosen})"
            f" RETURNING {WF_COLUMNS}, NULL, {CLAIMED_FRESH}", (*claim, *params)).fetchall()
        if keys:
            _served(conn, q, keys, status == "pending", clock_now)
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


_NO_LIMIT: Final = 1 << 62


def _keyed_chosen(conn: sqlite3.Connection, q: QueueLimits, status: str, names_json: str,
                  limit: int, order: str, clock_now: float) -> tuple[list[int], list[str]]:
    """Up to ``limit`` rowids of a keyed queue, its keys served round-robin; their keys."""
    rated = status == "pending" and q.key_rate is not None
    count, window = q.key_rate if rated and q.key_rate else (_NO_LIMIT, 0.0)
    if rated:
        conn.execute("DELETE FROM key_starts WHERE queue = ? AND at <= ?",
                     (q.name, clock_now - window))
        conn.execute("DELETE FROM queue_keys WHERE queue = ? AND open_at <= ?"
                     " AND pending <= 0 AND waiting <= 0", (q.name, clock_now))
        conn.execute("UPDATE queue_keys SET open_at = NULL WHERE queue = ? AND open_at <= ?",
                     (q.name, clock_now))
    per_key = q.key_concurrency or _NO_LIMIT
    rooms = [f"{per_key} - (SELECT count(*) FROM workflows AS r WHERE r.queue = :queue"
             " AND r.status = 'running' AND r.key = k.key)"] if q.key_concurrency else []
    if rated:
        rooms.append(f"{count} - (SELECT count(*) FROM key_starts AS s WHERE s.queue = :queue"
                     " AND s.key = k.key AND s.at > :since)")
    chosen = conn.execute(
        _KEYED.format(order=order, outer=order.replace("rowid", "r"),
                      room=f"min({', '.join(rooms)})" if len(rooms) > 1 else
                      (rooms or [str(_NO_LIMIT)])[0],
                      line="pending > 0 AND open_at IS NULL" if status == "pending"
                      else "waiting > 0"), {
            "queue": q.name, "status": status, "names": names_json, "limit": limit,
            "since": clock_now - window, "each": min(per_key, count, limit)}).fetchall()
    return [r for r, _ in chosen], [k for _, k in chosen if k is not None]


def _served(conn: sqlite3.Connection, q: QueueLimits, keys: list[str], started: bool,
            clock_now: float) -> None:
    """After a claim took from ``keys`` (one per workflow): each goes to the back of the line.

    A key left with nothing ready is cleared instead; one whose rate window
    the starts filled leaves the line until the window frees (``open_at``),
    keeping its row meanwhile so new work doesn't reopen it early.
    """
    served = list(dict.fromkeys(keys))
    (top,) = conn.execute("SELECT coalesce(max(served), 0) FROM queue_keys WHERE queue = ?",
                          (q.name,)).fetchone()
    conn.executemany("UPDATE queue_keys SET served = ? WHERE queue = ? AND key = ?",
                     [(top + n, q.name, k) for n, k in enumerate(served, 1)])
    if started and q.key_rate is not None:
        count, window = q.key_rate
        conn.executemany("INSERT INTO key_starts (queue, key, at) VALUES (?, ?, ?)",
                         [(q.name, k, clock_now) for k in keys])
        conn.execute(
            "UPDATE queue_keys SET open_at = (SELECT min(at) FROM key_starts AS s"
            "  WHERE s.queue = queue_keys.queue AND s.key = queue_keys.key) + ?"
            " WHERE queue = ? AND key IN (SELECT value FROM json_each(?))"
            " AND (SELECT count(*) FROM key_starts AS s"
            "  WHERE s.queue = queue_keys.queue AND s.key = queue_keys.key) >= ?",
            (window, q.name, json.dumps(served), count))
    conn.execute("DELETE FROM queue_keys WHERE queue = ? AND key IN (SELECT value FROM"
                 " json_each(?)) AND pending <= 0 AND waiting <= 0 AND open_at IS NULL",
                 (q.name, json.dumps(served)))


# The keys in line, in the order served (through queue_keys_pending or _waiting),
# each with its room (what its limit and rate window leave), the first ``limit``
# with room; each one's first few in line (workflows_ready_keyed), ranked; a key's
# n-th goes after every key's (n-1)-th. Keyless ones are one more line, last.
_KEYED = """
WITH keys AS (
    SELECT key, served, room FROM (
        SELECT key, served, {room} AS room
        FROM queue_keys AS k WHERE queue = :queue AND {line} ORDER BY served)
    WHERE room > 0 LIMIT :limit
), lines AS (
    SELECT w.rowid AS r, w.key, w.priority, w.created_at, keys.served AS s, keys.room
    FROM keys JOIN workflows AS w ON w.rowid IN (
        SELECT rowid FROM workflows
        WHERE queue = :queue AND status = :status AND ready = 1 AND key = keys.key
        AND name IN (SELECT value FROM json_each(:names)) ORDER BY {order} LIMIT :each)
    UNION ALL
    SELECT * FROM (SELECT rowid, key, priority, created_at, NULL, :limit FROM workflows
        WHERE queue = :queue AND status = :status AND ready = 1 AND key IS NULL
        AND name IN (SELECT value FROM json_each(:names)) ORDER BY {order} LIMIT :limit)
), ranked AS (
    SELECT *, row_number() OVER (PARTITION BY key ORDER BY {outer}) AS n FROM lines
)
SELECT r, key FROM ranked WHERE n <= room ORDER BY n, s IS NULL, s, {outer} LIMIT :limit
"""


def queue_next_wake(
    conn: sqlite3.Connection, clock_now: float, queues: Sequence[QueueLimits]
) -> list[float]:
    """For each rate-limited queue or key whose window is full with work due: when a start frees."""
    times: list[float] = []
    for q in queues:
        if q.key_rate is not None:  # the first key out of line (queue_keys_closed)
            (opens,) = conn.execute(
                "SELECT min(open_at) FROM queue_keys WHERE queue = ? AND open_at IS NOT NULL",
                (q.name,)).fetchone()
            if opens is not None:
                times.append(float(opens))
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
