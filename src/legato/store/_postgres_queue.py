"""Queue claims on PostgreSQL: limits counted under a per-queue advisory lock.

Unlike SQLite, PostgreSQL lets many claims run at once, so counting a queue's
running workflows and taking new ones could interleave between two workers
and overshoot a limit. Each claim of a queue with limits therefore first
takes a transaction-level advisory lock named after the schema and the queue:
claims of one queue take turns (for the few milliseconds of a claim), claims
of different queues and of unqueued work don't wait. Semantics are SQLite's
(see ``_sqlite_queue``): running workflows hold a slot, woken waiting ones
go before pending ones, the rate limit counts starts in ``queue_starts`` as a
sliding window of durable time, and ``key_concurrency`` is counted per key
and served fairly (see ``_sqlite_queue``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._errors import DuplicateWorkflow
from ._protocol import WF_COLUMNS, NewWorkflow, QueueLimits, owner_worker

__all__ = ["check_dedup", "claim_queue", "queue_next_wake"]

_ACTIVE = "status IN ('pending', 'running', 'waiting')"


async def check_dedup(conn: Any, wf: NewWorkflow) -> None:
    """Raise :class:`DuplicateWorkflow` if ``wf``'s key is held by another unfinished workflow."""
    if wf.dedup_key is None or wf.queue is None:
        return
    existing = await conn.fetchval(
        f"SELECT id FROM workflows WHERE queue = $1 AND dedup_key = $2 AND {_ACTIVE}"
        " AND id <> $3", wf.queue, wf.dedup_key, wf.id)
    if existing is not None:
        raise DuplicateWorkflow(wf.queue, wf.dedup_key, existing)


async def claim_queue(
    conn: Any, q: QueueLimits, *, schema: str, owner: str, lease_until: float, now: float,
    clock_now: float, room: int, names: list[str],
) -> list[Any]:
    """Take up to ``room`` of queue ``q``'s due workflows within its limits; return their rows.

    Rows end with a ``NULL`` ``previous_owner``, as the claim's: no lease is
    taken over here (lapsed ones, queued or not, are taken by ``CLAIM_SQL``).
    """
    take = room
    if q.caps_running or q.rate is not None or q.key_concurrency is not None:
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))",
                           f"legato:{schema}:queue:{q.name}")
    if q.caps_running:
        running, mine = await conn.fetchrow(
            "SELECT count(*), count(*) FILTER (WHERE owner = $1 OR starts_with(owner, $1 || '#'))"
            " FROM workflows WHERE queue = $2 AND status = 'running'", owner_worker(owner), q.name)
        take = q.room(room, running, mine)
    if take <= 0:
        return []
    order = "priority, created_at" if q.priority else "created_at"

    # Only ready ones, which the claim's first statement made of what fell due
    # (see _postgres_due), read in this order from the workflows_ready_* indexes.
    async def taken(status: str, limit: int) -> list[Any]:
        rows: list[Any] = await conn.fetch(
            "UPDATE workflows SET status = 'running', owner = $1, lease_until = $2,"
            f" wake_at = NULL, ready = false, updated_at = $3 WHERE id IN ({_chosen(q, order)})"
            f" RETURNING {WF_COLUMNS}, NULL::text AS previous_owner",
            owner, lease_until, now, q.name, names, limit, status, *_key_args(q))
        return sorted(rows, key=lambda r: (r["priority"] if q.priority else 0, r["created_at"]))

    woken = await taken("waiting", take)
    take -= len(woken)
    if take > 0 and q.rate is not None:
        count, window = q.rate
        await conn.execute("DELETE FROM queue_starts WHERE queue = $1 AND at <= $2",
                           q.name, clock_now - window)
        used = await conn.fetchval("SELECT count(*) FROM queue_starts WHERE queue = $1", q.name)
        take = min(take, count - used)
    if take <= 0:
        return woken
    started = await taken("pending", take)
    if q.rate is not None and started:
        await conn.executemany("INSERT INTO queue_starts (queue, at) VALUES ($1, $2)",
                               [(q.name, clock_now)] * len(started))
    return woken + started


def _chosen(q: QueueLimits, order: str) -> str:
    """The ids a claim of ``q`` takes: $4 queue, $5 names, $6 limit, $7 status, $8 key limit."""
    if q.key_concurrency is None:
        return ("SELECT id FROM workflows WHERE queue = $4 AND status = $7 AND ready"
                f" AND name = ANY($5::text[]) ORDER BY {order} LIMIT $6 FOR UPDATE SKIP LOCKED")
    return _KEYED.format(order=order)


# As SQLite's (see _sqlite_queue): each key's first $8 in line, read through
# workflows_ready_keyed (the keys found by index seeks); the least busy key first,
# none past its limit. No SKIP LOCKED beside a window function: the queue's
# advisory lock, held, keeps other claims of these rows out.
_KEYED = """
WITH RECURSIVE keys(k) AS (
    SELECT min(key) FROM workflows
    WHERE queue = $4 AND status = $7 AND ready AND key IS NOT NULL
    UNION ALL
    SELECT (SELECT min(key) FROM workflows
            WHERE queue = $4 AND status = $7 AND ready AND key > keys.k)
    FROM keys WHERE keys.k IS NOT NULL
), running AS (
    SELECT key, count(*) AS c FROM workflows
    WHERE queue = $4 AND status = 'running' AND key IS NOT NULL GROUP BY key
), lines AS (
    SELECT w.* FROM keys CROSS JOIN LATERAL (
        SELECT id, key, priority, created_at FROM workflows
        WHERE queue = $4 AND status = $7 AND ready AND key = keys.k
        AND name = ANY($5::text[]) ORDER BY {order} LIMIT $8) AS w
    WHERE keys.k IS NOT NULL
    UNION ALL
    (SELECT id, key, priority, created_at FROM workflows
     WHERE queue = $4 AND status = $7 AND ready AND key IS NULL
     AND name = ANY($5::text[]) ORDER BY {order} LIMIT $6)
), ranked AS (
    SELECT *, row_number() OVER (PARTITION BY key ORDER BY {order}) AS n FROM lines
)
SELECT ranked.id FROM ranked LEFT JOIN running USING (key)
WHERE ranked.key IS NULL OR n + coalesce(c, 0) <= $8
ORDER BY n + coalesce(c, 0), {order} LIMIT $6
"""


def _key_args(q: QueueLimits) -> tuple[int, ...]:
    return () if q.key_concurrency is None else (q.key_concurrency,)


async def queue_next_wake(conn: Any, clock_now: float, queues: Sequence[QueueLimits]
                          ) -> list[float]:
    """For each rate-limited queue whose window is full with work due: when a start frees."""
    times: list[float] = []
    for q in queues:
        if q.rate is None:
            continue
        count, window = q.rate
        used, oldest = await conn.fetchrow(
            "SELECT count(*), min(at) FROM queue_starts WHERE queue = $1 AND at > $2",
            q.name, clock_now - window)
        if used < count or oldest is None:
            continue
        due = await conn.fetchval(
            "SELECT 1 FROM workflows WHERE queue = $1 AND status = 'pending' AND ready"
            " UNION ALL SELECT 1 FROM workflows WHERE due_at <= $2 AND queue = $1"
            " AND status = 'pending' LIMIT 1", q.name, clock_now)
        if due is not None:
            times.append(float(oldest) + window)
    return times
