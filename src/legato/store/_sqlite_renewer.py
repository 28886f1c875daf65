"""Renewing leases and announcing the worker on a SQLite connection of its own.

The lease keeper's thread uses :class:`SqliteRenewer`; the store's own
``heartbeat`` runs the same :func:`renew` on its writer.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import final

from ._protocol import Lease, Renewal, WorkerRecord
from ._sqlite_connect import connect as _connect
from ._sqlite_errors import translated

__all__ = ["SqliteRenewer", "announce_worker", "renew"]


def renew(conn: sqlite3.Connection, leases: Sequence[Lease], lease_until: float) -> Renewal:
    # Only extends: a renewal sent earlier and carried out later (queued behind other
    # writes) must not shorten the lease a later one wrote, for another worker to take.
    rows = conn.execute(
        "UPDATE workflows SET lease_until = max(lease_until, ?) WHERE status = 'running'"
        " AND (id, owner)"
        " IN (SELECT value ->> 0, value ->> 1 FROM json_each(?)) RETURNING id, cancel",
        (lease_until, json.dumps(leases))).fetchall()
    return Renewal.of(rows)


@final
class SqliteRenewer:
    """Renews leases on a connection of its own (see :class:`~legato.store.Renewer`)."""

    def __init__(self, path: Path, synchronous: str) -> None:
        self.path, self.synchronous = path, synchronous
        self._conn: sqlite3.Connection | None = None

    async def open(self) -> None:
        with translated("open the database", self.path):
            self._conn = _connect(self.path, self.synchronous)
            # a few small updates: a page cache of its own would only hold memory
            self._conn.execute("PRAGMA cache_size = -64")

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def heartbeat(self, leases: Sequence[Lease], lease_until: float) -> Renewal:
        if not leases or self._conn is None:
            return Renewal()
        with translated("renew leases", self.path):
            return renew(self._conn, leases, lease_until)

    async def server_time(self) -> float | None:
        return None

    async def announce(self, worker: WorkerRecord) -> None:
        if self._conn is not None:
            with translated("announce the worker", self.path):
                announce_worker(self._conn, worker)

    async def unknown_names(self, known: Sequence[str]) -> list[str]:
        if self._conn is None:
            return []
        with translated("read pending workflows", self.path):
            return [r[0] for r in self._conn.execute(
                "SELECT DISTINCT name FROM workflows WHERE status = 'pending'"
                " AND name NOT IN (SELECT value FROM json_each(?)) LIMIT 20",
                (json.dumps(list(known)),))]


_FORGET_WORKERS_AFTER = 86400.0  # seconds without a sign of life


def announce_worker(conn: sqlite3.Connection, worker: WorkerRecord) -> None:
    with conn:
        conn.execute(
            "INSERT INTO workers (id, names, queues, started_at, seen_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET names = excluded.names, queues = excluded.queues,"
            " seen_at = excluded.seen_at",
            (worker.id, json.dumps(worker.names), json.dumps(worker.queues), worker.started_at,
             worker.seen_at))
        conn.execute("DELETE FROM workers WHERE seen_at < ?",
                     (worker.seen_at - _FORGET_WORKERS_AFTER,))
