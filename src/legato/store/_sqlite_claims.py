"""Claims on SQLite: who runs what, the leases held, and when to look again.

The :class:`~legato.store.Claims` part of ``SqliteStore``, apart as its
schedules are, so that ``_sqlite.py`` stays a readable length. A claim is
one write transaction (what is due read through indexes, see
``_sqlite_due``; queue limits counted inside it, see ``_sqlite_queue``), and
SQLite has one writer at a time across every process sharing the file, so
two processes never take the same workflow. ``_now`` is defined here, as the
store imports this module and never the reverse.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ._protocol import (
    Claimed,
    ClaimRequest,
    Lease,
    QueueLimits,
    Renewal,
    WorkerRecord,
)
from ._sqlite_due import PROMOTE_MAX, claim_unqueued, claimable, next_due, promote
from ._sqlite_errors import translated
from ._sqlite_news import announce
from ._sqlite_queue import claim_queue, queue_next_wake
from ._sqlite_renewer import SqliteRenewer, renew

if TYPE_CHECKING:
    from pathlib import Path

    from ._group_commit import GroupCommitter

__all__ = ["SqliteClaims"]


def _claimed(row: tuple[Any, ...]) -> Claimed:
    """A claimed row: the workflow's columns, then the attempt it was taken from."""
    claimed = Claimed(*row)
    object.__setattr__(claimed, "cancel", bool(claimed.cancel))
    object.__setattr__(claimed, "fresh", bool(claimed.fresh))
    return claimed


def _now() -> float:
    return time.time()


class SqliteClaims:
    """The :class:`~legato.store.Claims` part of ``SqliteStore`` (mixed into it)."""

    if TYPE_CHECKING:
        path: Path
        synchronous: str
        _writer: sqlite3.Connection | None
        _commits: GroupCommitter | None

        async def _write(self, action: str, op: Any) -> Any: ...
        def _read(self, action: str, sql: str, params: tuple[Any, ...]) -> list[Any]: ...
        def _reading(self) -> sqlite3.Connection: ...

    async def claim(self, request: ClaimRequest) -> list[Claimed]:
        owner, limit, queues = request.owner, request.limit, request.queues
        durable_now = request.durable_now
        names_json = json.dumps(list(request.names))
        running_json = json.dumps(list(request.running))
        called = time.monotonic()
        commits = self._commits
        if not queues and commits is not None and commits.quiet():
            # Nothing to take (the usual answer of an idle worker): no write transaction.
            # Quiet: no write is waiting to commit, so this read sees every one made.
            assert self._writer is not None
            with translated("look for claimable workflows", self.path):
                if not claimable(self._writer, now=request.real_now, clock_now=durable_now,
                                 names_json=names_json, running_json=running_json):
                    return []

        def op(conn: sqlite3.Connection) -> list[Claimed]:
            # The lease starts when the claim is made, not when it was asked for: a
            # claim that waited its turn (a burst of writes) must not take a lease
            # that has lapsed already, which another process would take over at once.
            waited = time.monotonic() - called
            lease_until, now = request.lease_until + waited, request.real_now + waited
            # What fell due by durable_now becomes ready, then ready ones are taken in
            # claim order (see _sqlite_due). More due than one promotion marks: go on
            # while this claim has room, so none is left behind a later-due one.
            rows: list[tuple[Any, ...]] = []
            while True:
                promoted = promote(conn, durable_now)
                rows += claim_unqueued(conn, owner=owner, lease_until=lease_until, now=now,
                                       limit=limit - len(rows), names_json=names_json,
                                       running_json=running_json)
                if promoted < PROMOTE_MAX or len(rows) >= limit:
                    break
            for q in queues:
                if len(rows) >= limit:
                    break
                rows += claim_queue(conn, q, owner=owner, lease_until=lease_until, now=now,
                                    clock_now=durable_now, room=limit - len(rows),
                                    names_json=names_json)
            return [_claimed(r) for r in rows]

        claimed: list[Claimed] = await self._write("claim workflows", op)
        return claimed

    async def heartbeat(self, leases: Sequence[Lease], lease_until: float) -> Renewal:
        if not leases:
            return Renewal()
        called = time.monotonic()

        def op(conn: sqlite3.Connection) -> Renewal:
            # from when it is carried out, as a claim's lease (it may wait behind a burst)
            return renew(conn, leases, lease_until + (time.monotonic() - called))

        renewal: Renewal = await self._write("renew leases", op)
        return renewal

    def renewer(self) -> SqliteRenewer:
        return SqliteRenewer(self.path, self.synchronous)

    async def server_time(self) -> float | None:
        return None  # a file on this machine: its clock is ours

    async def suspend(
        self, workflow_id: str, owner: str, wake_at: float | None,
        signal: str | None = None, child: str | None = None,
    ) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            arrived = signal is not None and conn.execute(
                "SELECT 1 FROM signals WHERE workflow_id = ? AND name = ?"
                " AND consumed_at IS NULL LIMIT 1", (workflow_id, signal)).fetchone()
            arrived = arrived or (child is not None and conn.execute(
                "SELECT 1 FROM workflows WHERE id = ? AND status IN"
                " ('succeeded', 'failed', 'cancelled')", (child,)).fetchone())
            # a cancel asked for while it ran: due at once, to be cancelled
            arrived = arrived or conn.execute(
                "SELECT cancel FROM workflows WHERE id = ?", (workflow_id,)).fetchone() == (1,)
            cur = conn.execute(
                "UPDATE workflows SET status = 'waiting', owner = NULL, lease_until = 0,"
                " wake_at = ?, updated_at = ? WHERE id = ? AND owner = ? AND status = 'running'",
                (0.0 if arrived else wake_at, _now(), workflow_id, owner))
            if cur.rowcount != 1:
                return False
            announce(conn, "wake" if arrived else "timer", workflow_id)
            return True

        done: bool = await self._write(f"suspend workflow {workflow_id!r}", op)
        return done

    async def release(self, leases: Sequence[Lease]) -> None:
        def op(conn: sqlite3.Connection) -> None:
            for wid, owner in leases:
                if conn.execute("UPDATE workflows SET owner = NULL, lease_until = 0"
                                " WHERE id = ? AND owner = ? AND status = 'running'",
                                (wid, owner)).rowcount:
                    announce(conn, "pending", wid)

        await self._write("release leases", op)

    async def next_lease_expiry(self) -> float | None:
        rows = self._read(
            "read leases",
            "SELECT min(lease_until) FROM workflows WHERE status = 'running'", ())
        value = rows[0][0]
        return float(value) if value is not None else None

    async def next_wake(
        self, clock_now: float | None = None, queues: Sequence[QueueLimits] = ()
    ) -> float | None:
        conn = self._reading()
        after = float("-inf") if clock_now is None else clock_now
        with translated("read timers", self.path):
            due = next_due(conn, after)
            times = [] if due is None else [due]
            if queues and clock_now is not None:
                times += queue_next_wake(conn, clock_now, queues)
        return min(times, default=None)

    async def workers(self) -> list[WorkerRecord]:
        rows = self._read(
            "read workers", "SELECT id, names, queues, started_at, seen_at FROM workers"
            " ORDER BY id", ())
        return [WorkerRecord(wid, tuple(json.loads(names)), tuple(json.loads(queues)), started,
                             seen) for wid, names, queues, started, seen in rows]

    async def retire(self, worker_id: str) -> None:
        await self._write("retire the worker", lambda conn: conn.execute(
            "DELETE FROM workers WHERE id = ?", (worker_id,)))

