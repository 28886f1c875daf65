"""Claims on PostgreSQL: who runs what, the leases held, and when to look again.

The :class:`~legato.store.Claims` part of ``PostgresStore``, apart as its
schedules are, so that ``_postgres.py`` stays a readable length. A claim
locks its rows ``SKIP LOCKED`` (see ``_postgres_due``; queue limits are
counted in the same transaction, see ``_postgres_queue``), so concurrent
workers never take the same workflow; ``suspend`` and ``release`` are fenced
by owner, as every write of a worker is. What the store's other writes use
too (``_ANNOUNCE``, ``_ANNOUNCE_FINISH``, ``_ID_KEPT``, ``_FINISHED``) is defined here, as the
store imports this module and never the reverse.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from ._postgres_connect import translated
from ._postgres_due import CLAIM_SQL, NEXT_DUE_SQL
from ._postgres_pool import Connections
from ._postgres_queue import claim_queue, queue_next_wake
from ._postgres_renewer import SERVER_TIME_SQL, PostgresRenewer, renew
from ._protocol import (
    Claimed,
    ClaimRequest,
    Lease,
    QueueLimits,
    Renewal,
    WorkerRecord,
    owner_worker,
)

__all__ = ["PostgresClaims"]

T = TypeVar("T")

_FINISHED = ("succeeded", "failed", "cancelled")

# NOTIFY payloads stop at 8000 bytes: a (strange) longer id is announced by kind alone.
_ID_KEPT = 4000


def _announce_sql(channel: str) -> str:
    """A SELECT announcing ``$2`` news of each id the CTE ``w`` yields, on ``channel``.

    ``channel`` is an SQL expression: a parameter, or one read from ``w``.
    """
    return (f"SELECT count(pg_notify({channel}, CASE WHEN octet_length(id) < {_ID_KEPT}"
            " THEN $2 || ' ' || id ELSE $2 END)) FROM w")


_ANNOUNCE = _announce_sql("$1")  # on the channel ``$1``
# A finish (``w`` yields ``id, queue``): a queued one frees a slot of its queue, news
# for every worker (``$1``); the others only for processes following ends (``$10``).
_ANNOUNCE_FINISH = _announce_sql("CASE WHEN queue IS NULL THEN $10 ELSE $1 END")


def _claimed(row: Any) -> Claimed:
    """A claimed row: the workflow's columns, then the attempt it was taken from."""
    return Claimed(*row)


class PostgresClaims:
    """The :class:`~legato.store.Claims` part of ``PostgresStore`` (mixed into it)."""

    if TYPE_CHECKING:
        dsn: str
        schema: str
        channel: str

        def _settings(self) -> dict[str, str]: ...
        def _open(self) -> Connections: ...
        async def _read(self, action: str, sql: str, *args: Any) -> list[Any]: ...
        async def _write(self, action: str, sql: str, *args: Any) -> list[Any]: ...
        async def _tx(self, action: str, body: Callable[[Any], Awaitable[T]]) -> T: ...
        async def _tx_free(self, action: str, body: Callable[[Any], Awaitable[T]]) -> T: ...
        async def _notify(self, conn: Any, kind: str, workflow_id: str, *,
                          queued: bool = False) -> None: ...

    async def claim(self, request: ClaimRequest) -> list[Claimed]:
        owner, limit, names = request.owner, request.limit, list(request.names)
        durable_now = request.durable_now
        called = time.monotonic()

        async def body(conn: Any) -> list[Claimed]:
            # The lease starts when the claim is made, not when it was asked for: a
            # claim that waited for a connection must not take a lease that has lapsed.
            waited = time.monotonic() - called
            lease_until, now = request.lease_until + waited, request.real_now + waited
            rows = await conn.fetch(CLAIM_SQL, owner, lease_until, now, durable_now, names,
                                    limit, owner_worker(owner) + "#", list(request.running),
                                    self.channel)
            rows = sorted(rows, key=lambda r: (r["priority"], r["created_at"]))
            for q in request.queues:
                if len(rows) >= limit:
                    break
                rows += await claim_queue(
                    conn, q, schema=self.schema, owner=owner, lease_until=lease_until,
                    now=now, clock_now=durable_now, room=limit - len(rows), names=names)
            return [_claimed(r) for r in rows]

        if not request.queues:  # one statement: no transaction of our own to open
            claimed = await self._tx_free("claim workflows", body)
        else:
            claimed = await self._tx("claim workflows", body)
        return await self._fresh(claimed) if len(claimed) > 1 else claimed

    async def _fresh(self, claimed: list[Claimed]) -> list[Claimed]:
        """``claimed``, each marked with whether it has no checkpoints (``Claimed.fresh``).

        Read after the claim committed, not in it: under READ COMMITTED a
        statement's snapshot can predate a checkpoint that another worker
        committed before this claim locked the row. Once committed, no other
        attempt's checkpoint can land (they are fenced by owner), so this read
        is exact. One statement for the batch, where each run would read its
        (empty) history; a claim of one row reads its history as before.
        """
        rows = await self._read(
            "read which claimed workflows have checkpoints",
            "SELECT id FROM unnest($1::text[]) AS id"
            " WHERE NOT EXISTS (SELECT 1 FROM steps WHERE steps.workflow_id = id)",
            [c.id for c in claimed])
        fresh = {r[0] for r in rows}
        return [replace(c, fresh=True) if c.id in fresh else c for c in claimed]

    async def heartbeat(self, leases: Sequence[Lease], lease_until: float) -> Renewal:
        if not leases:
            return Renewal()
        return await renew(lambda *sql: self._write("renew leases", *sql), leases, lease_until)

    def renewer(self) -> PostgresRenewer:
        return PostgresRenewer(self.dsn, self._settings())

    async def server_time(self) -> float | None:
        rows = await self._read("read the server's clock", SERVER_TIME_SQL)
        return float(rows[0][0])

    async def suspend(
        self, workflow_id: str, owner: str, wake_at: float | None,
        signal: str | None = None, child: str | None = None,
    ) -> bool:
        async def body(conn: Any) -> bool:
            # Lock the rows a sender or a finishing child locks, in the same order
            # (child, then this workflow), so that under READ COMMITTED a signal
            # or child end committed concurrently is either seen below or, made
            # after, finds this workflow 'waiting' and wakes it: no lost wake-up.
            if child is not None:
                await conn.execute("SELECT 1 FROM workflows WHERE id = $1 FOR SHARE", child)
            # a cancel asked for while it ran makes it due at once, to be cancelled
            arrived = bool(await conn.fetchval(
                "SELECT cancel FROM workflows WHERE id = $1 FOR UPDATE", workflow_id))
            arrived = arrived or (signal is not None and await conn.fetchval(
                "SELECT 1 FROM signals WHERE workflow_id = $1 AND name = $2"
                " AND consumed_at IS NULL LIMIT 1", workflow_id, signal) is not None)
            arrived = arrived or (child is not None and await conn.fetchval(
                "SELECT 1 FROM workflows WHERE id = $1 AND status = ANY($2::text[])",
                child, list(_FINISHED)) is not None)
            wake = 0.0 if arrived else wake_at
            done = await conn.fetchval(
                "UPDATE workflows SET status = 'waiting', owner = NULL, lease_until = 0,"
                " wake_at = $1, updated_at = $2 WHERE id = $3 AND owner = $4"
                " AND status = 'running' RETURNING 1",
                wake, time.time(), workflow_id, owner)
            if done is None:
                return False
            if wake is not None:
                await self._notify(conn, "wake" if arrived else "timer", workflow_id)
            return True

        return await self._tx(f"suspend workflow {workflow_id!r}", body)

    async def release(self, leases: Sequence[Lease]) -> None:
        ids, owners = [list(x) for x in zip(*leases, strict=True)] if leases else ([], [])
        await self._write(
            "release leases",
            "WITH w AS (UPDATE workflows SET owner = NULL, lease_until = 0"
            " WHERE (id, owner) IN (SELECT * FROM unnest($3::text[], $4::text[]))"
            f" AND status = 'running' RETURNING id) {_ANNOUNCE}",
            self.channel, "pending", ids, owners)

    async def workers(self) -> list[WorkerRecord]:
        rows = await self._read(
            "read workers",
            "SELECT id, names, queues, started_at, seen_at FROM workers ORDER BY id")
        return [WorkerRecord(r[0], tuple(r[1]), tuple(r[2]), r[3], r[4]) for r in rows]

    async def retire(self, worker_id: str) -> None:
        await self._write("retire the worker", "DELETE FROM workers WHERE id = $1", worker_id)

    async def next_lease_expiry(self) -> float | None:
        rows = await self._read(
            "read leases", "SELECT min(lease_until) FROM workflows WHERE status = 'running'")
        return None if rows[0][0] is None else float(rows[0][0])

    async def next_wake(
        self, clock_now: float | None = None, queues: Sequence[QueueLimits] = ()
    ) -> float | None:
        after = float("-inf") if clock_now is None else clock_now
        conns = self._open()
        with translated("read timers"):
            async with conns.one() as conn:
                due = await conn.fetchval(NEXT_DUE_SQL, after)
                times = [] if due is None else [float(due)]
                if queues and clock_now is not None:
                    times += await queue_next_wake(conn, clock_now, queues)
        return min(times, default=None)

