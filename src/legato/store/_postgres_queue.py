"""Queue claims on PostgreSQL: limits counted under a per-queue advisory lock.

Unlike SQLite, PostgreSQL lets many claims run at once, so counting a queue's
running workflows and taking new ones could interleave between two workers
and overshoot a limit. Each claim of a queue with limits therefore first
takes a transaction-level advisory lock named after the schema and the queue:
claims of one queue take turns (for the few milliseconds of a claim), claims
of different queues and of unqueued work don't wait. Semantics are SQLite's
(see ``_sqlite_queue``): running workflows hold a slot, woken waiting ones
go before pending ones, the rate limit counts starts in ``queue_starts`` as a
sliding window of durable time, and keyed queues serve their keys round-robin
from ``queue_keys`` (kept by a trigger), as SQLite's do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

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
    if q.caps_running or q.rate is not None or q.keyed:
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
        args: list[Any]
        keys: list[str] = []
        if q.keyed:
            ids, keys = await _keyed_chosen(conn, q, status, names, limit, order, clock_now)
            chosen, args = "SELECT unnest($4::text[])", [ids]
        else:
            chosen = ("SELECT id FROM workflows WHERE queue = $4 AND status = $7 AND ready"
                      f" AND name = ANY($5::text[]) ORDER BY {order} LIMIT $6"
                      " FOR UPDATE SKIP LOCKED")
            args = [q.name, names, limit, status]
        rows: list[Any] = await conn.fetch(
            "UPDATE workflows SET status = 'running', owner = $1, lease_until = $2,"
            f" wake_at = NULL, ready = false, updated_at = $3 WHERE id IN ({chosen})"
            f" RETURNING {WF_COLUMNS}, NULL::text AS previous_owner",
            owner, lease_until, now, *args)
        if keys:
            await _served(conn, q, keys, status == "pending", clock_now)
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


_NO_LIMIT: Final = 1 << 62


async def _keyed_chosen(conn: Any, q: QueueLimits, status: str, names: list[str], limit: int,
                        order: str, clock_now: float) -> tuple[list[str], list[str]]:
    """Up to ``limit`` ids of a keyed queue, its keys served round-robin; their keys."""
    rated = status == "pending" and q.key_rate is not None
    count, window = q.key_rate if rated and q.key_rate else (_NO_LIMIT, 0.0)
    if rated:
        await conn.execute("DELETE FROM key_starts WHERE queue = $1 AND at <= $2",
                           q.name, clock_now - window)
        await conn.execute(  # a closed key kept its row; cleared if it has nothing ready
            "WITH gone AS (DELETE FROM queue_keys WHERE queue = $1 AND open_at <= $2"
            " AND pending <= 0 AND waiting <= 0)"
            " UPDATE queue_keys SET open_at = NULL WHERE queue = $1 AND open_at <= $2"
            " AND (pending > 0 OR waiting > 0)", q.name, clock_now)
    per_key = q.key_concurrency or _NO_LIMIT
    rooms = [f"{per_key} - (SELECT count(*) FROM workflows AS r WHERE r.queue = $1"
             " AND r.status = 'running' AND r.key = k.key)"] if q.key_concurrency else []
    if rated:
        rooms.append(f"{count} - (SELECT count(*) FROM key_starts AS s WHERE s.queue = $1"
                     " AND s.key = k.key AND s.at > $6)")
    chosen = await conn.fetch(
        _KEYED.format(order=order, room=f"least({', '.join(rooms or [str(_NO_LIMIT)])})",
                      line="pending > 0 AND open_at IS NULL" if status == "pending"
                      else "waiting > 0"),
        q.name, status, names, limit, min(per_key, count, limit),
        *([clock_now - window] if rated else []))
    return [r["id"] for r in chosen], [r["key"] for r in chosen if r["key"] is not None]


async def _served(conn: Any, q: QueueLimits, keys: list[str], started: bool,
                  clock_now: float) -> None:
    """After a claim took from ``keys`` (one per workflow): each to the back of the line.

    As SQLite's: a key left with nothing ready is cleared; one whose rate
    window the starts filled leaves the line until it frees (``open_at``).
    """
    served = list(dict.fromkeys(keys))
    await conn.execute(
        "UPDATE queue_keys AS k SET served = top.s + u.n"
        " FROM unnest($2::text[]) WITH ORDINALITY AS u(key, n),"
        " (SELECT coalesce(max(served), 0) AS s FROM queue_keys WHERE queue = $1) AS top"
        " WHERE k.queue = $1 AND k.key = u.key", q.name, served)
    if started and q.key_rate is not None:
        count, window = q.key_rate
        await conn.execute(
            "INSERT INTO key_starts (queue, key, at) SELECT $1, unnest($2::text[]), $3",
            q.name, keys, clock_now)
        await conn.execute(
            "UPDATE queue_keys AS k SET open_at = s.first + $3"
            " FROM (SELECT key, min(at) AS first, count(*) AS c FROM key_starts"
            "  WHERE queue = $1 AND key = ANY($2::text[]) GROUP BY key) AS s"
            " WHERE k.queue = $1 AND k.key = s.key AND s.c >= $4",
            q.name, served, window, count)
    await conn.execute(
        "DELETE FROM queue_keys WHERE queue = $1 AND key = ANY($2::text[])"
        " AND pending <= 0 AND waiting <= 0 AND open_at IS NULL", q.name, served)


# As SQLite's (see _sqlite_queue): the keys in line, in the order served, each
# with its room; each one's first few (workflows_ready_keyed), ranked, a key's
# n-th after every key's (n-1)-th; keyless ones last. $1 queue, $2 status,
# $3 names, $4 limit, $5 each key's few, $6 the rate window's start. No SKIP
# LOCKED beside a window function: the queue's advisory lock keeps other claims out.
_KEYED = """
WITH keys AS (
    SELECT k.key, k.served, room.n AS room FROM queue_keys AS k
    CROSS JOIN LATERAL (SELECT {room} AS n) AS room
    WHERE k.queue = $1 AND {line} AND room.n > 0 ORDER BY k.served LIMIT $4
), lines AS (
    SELECT w.*, keys.served AS s, keys.room FROM keys CROSS JOIN LATERAL (
        SELECT id, key, priority, created_at FROM workflows
        WHERE queue = $1 AND status = $2 AND ready AND key = keys.key
        AND name = ANY($3::text[]) ORDER BY {order} LIMIT $5) AS w
    UNION ALL
    (SELECT id, key, priority, created_at, NULL::bigint, $4::bigint FROM workflows
     WHERE queue = $1 AND status = $2 AND ready AND key IS NULL
     AND name = ANY($3::text[]) ORDER BY {order} LIMIT $4)
), ranked AS (
    SELECT *, row_number() OVER (PARTITION BY key ORDER BY {order}) AS n FROM lines
)
SELECT id, key FROM ranked WHERE n <= room ORDER BY n, s IS NULL, s, {order} LIMIT $4
"""


async def queue_next_wake(conn: Any, clock_now: float, queues: Sequence[QueueLimits]
                          ) -> list[float]:
    """For each rate-limited queue or key whose window is full with work due: when one frees."""
    times: list[float] = []
    for q in queues:
        if q.key_rate is not None:  # the first key out of line (queue_keys_closed)
            opens = await conn.fetchval(
                "SELECT min(open_at) FROM queue_keys WHERE queue = $1 AND open_at IS NOT NULL",
                q.name)
            if opens is not None:
                times.append(float(opens))
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
