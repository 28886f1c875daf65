"""Renewing leases and announcing the worker on a PostgreSQL connection of its own.

The lease keeper's thread uses :class:`PostgresRenewer`; the store's own
``heartbeat`` and ``server_time`` run the same statements on its pool.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, final

import asyncpg

from ._postgres_connect import translated
from ._protocol import Lease, Renewal, WorkerRecord

__all__ = ["SERVER_TIME_SQL", "PostgresRenewer", "renew"]


# Locked in id order, as claims lock: two writers never wait on each other in a circle.
# A renewal only extends: one sent earlier and carried out later (queued behind other
# writes) must not shorten the lease a later one wrote, for another worker to take.
def _renew_sql(lock: str) -> str:
    return (
        "UPDATE workflows SET lease_until = greatest(lease_until, $3) WHERE id IN (SELECT id"
        " FROM workflows"
        " WHERE (id, owner) IN (SELECT * FROM unnest($1::text[], $2::text[]))"
        f" AND status = 'running' ORDER BY id {lock}) RETURNING id, cancel")


_RENEW_FREE = _renew_sql("FOR UPDATE SKIP LOCKED")
_RENEW_WAITING = _renew_sql("FOR UPDATE")
SERVER_TIME_SQL = "SELECT extract(epoch FROM clock_timestamp())"
ANNOUNCE_WORKER_SQL = (
    "WITH gone AS (DELETE FROM workers WHERE seen_at < $5::float8 - $6::float8)"
    " INSERT INTO workers (id, names, queues, started_at, seen_at) VALUES ($1, $2, $3, $4, $5)"
    " ON CONFLICT (id) DO UPDATE SET names = excluded.names, queues = excluded.queues,"
    " seen_at = excluded.seen_at")
_FORGET_WORKERS_AFTER = 86400.0  # seconds without a sign of life


async def renew(fetch: Callable[..., Awaitable[list[Any]]], leases: Sequence[Lease],
                lease_until: float) -> Renewal:
    """Extend ``leases`` to ``lease_until`` with ``fetch(sql, *args)``: free rows first.

    A renewal that waited for each row in turn held every row before the one
    it waited on: their finishes and checkpoints queued behind it (a renewal
    of 275 rows took 48 ms among four busy workers, and each finish waited).
    So the rows no one holds are renewed at once, and only the rest (a
    checkpoint or a finish of this worker's under way, or no longer held) are
    waited for, in a second statement, as before. Every lease given is still
    renewed, or found lost, in this call.
    """
    ids, owners = [wid for wid, _ in leases], [owner for _, owner in leases]
    rows = await fetch(_RENEW_FREE, ids, owners, lease_until)
    if len(rows) < len(leases):
        done = {r[0] for r in rows}
        rest = [(wid, owner) for wid, owner in leases if wid not in done]
        rows += await fetch(_RENEW_WAITING, [wid for wid, _ in rest],
                            [owner for _, owner in rest], lease_until)
    return Renewal.of(rows)


@final
class PostgresRenewer:
    """Renews leases on a connection of its own (see :class:`~legato.store.Renewer`)."""

    def __init__(self, dsn: str, settings: dict[str, str]) -> None:
        self.dsn, self.settings = dsn, settings
        self._conn: Any = None

    async def open(self) -> None:
        pass  # connected on first use, and again after a lost connection

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def _fetch(self, action: str, sql: str, *args: Any) -> list[Any]:
        with translated(action):
            try:
                if self._conn is None or self._conn.is_closed():
                    self._conn = await asyncpg.connect(self.dsn, server_settings=self.settings)
                rows: list[Any] = await self._conn.fetch(sql, *args)
                return rows
            except BaseException:
                if self._conn is not None:
                    self._conn.terminate()
                self._conn = None
                raise

    async def heartbeat(self, leases: Sequence[Lease], lease_until: float) -> Renewal:
        if not leases:
            return Renewal()
        return await renew(lambda *sql: self._fetch("renew leases", *sql), leases, lease_until)

    async def server_time(self) -> float | None:
        rows = await self._fetch("read the server's clock", SERVER_TIME_SQL)
        return float(rows[0][0])

    async def announce(self, worker: WorkerRecord) -> None:
        await self._fetch(
            "announce the worker", ANNOUNCE_WORKER_SQL, worker.id, list(worker.names),
            list(worker.queues), worker.started_at, worker.seen_at, _FORGET_WORKERS_AFTER)

    async def unknown_names(self, known: Sequence[str]) -> list[str]:
        rows = await self._fetch(
            "read pending workflows",
            "SELECT DISTINCT name FROM workflows WHERE status = 'pending'"
            " AND NOT name = ANY($1::text[]) LIMIT 20", list(known))
        return [r[0] for r in rows]
