"""The embedded store: one SQLite file in WAL mode.

One writer connection commits groups of writes (see ``_group_commit``); one
reader connection serves lookups, which WAL lets run beside the writer.
Several processes may open the same file: claims are single ``UPDATE ...
RETURNING`` statements, so two processes never take the same workflow.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, final
from urllib.parse import parse_qs, urlsplit

from .._errors import StoreError
from ._group_commit import GroupCommitter
from ._protocol import NewWorkflow, StepRecord, WorkflowRecord
from ._sqlite_schema import migrate

__all__ = ["SqliteStore", "parse_sqlite_url"]

_SYNC_MODES = {"normal": "NORMAL", "full": "FULL", "off": "OFF", "extra": "EXTRA"}
_WF_COLUMNS = (
    "id, name, status, input, result, error, owner, lease_until, "
    "created_at, updated_at, finished_at"
)


def parse_sqlite_url(url: str) -> tuple[Path, str]:
    """``"legato.db"`` or ``"sqlite:///rel.db?synchronous=full"`` → (path, sync mode).

    As in SQLAlchemy, ``sqlite:///x.db`` is relative and ``sqlite:////x.db`` absolute.
    """
    if not url.startswith("sqlite:"):
        return Path(url), "NORMAL"
    parts = urlsplit(url)
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    if not path or path == ":memory:":
        raise ValueError(
            f"{url!r} names no file; legato needs a database file that outlives the "
            "process, e.g. 'sqlite:///legato.db'"
        )
    options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = set(options) - {"synchronous"}
    if unknown:
        raise ValueError(f"unknown option(s) {sorted(unknown)} in {url!r}; known: synchronous")
    mode = options.get("synchronous", "normal").lower()
    if mode not in _SYNC_MODES:
        raise ValueError(
            f"synchronous={mode!r} in {url!r} is not a SQLite mode; use normal "
            "(survives a process crash) or full (survives power loss)"
        )
    return Path(path), _SYNC_MODES[mode]


@contextmanager
def _translated(action: str) -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as exc:
        raise StoreError(f"SQLite failed to {action}: {exc}") from exc


def _connect(path: Path, sync: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {sync}")
    return conn


def _record(row: tuple[Any, ...]) -> WorkflowRecord:
    return WorkflowRecord(*row)


@final
class SqliteStore:
    """A :class:`~legato.store.Store` on one SQLite file.

    Example::

        store = SqliteStore("sqlite:///legato.db?synchronous=full")
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.path, self.synchronous = parse_sqlite_url(url)
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._commits: GroupCommitter | None = None

    def __repr__(self) -> str:
        return f"SqliteStore({self.url!r})"

    async def open(self) -> None:
        with _translated(f"open {self.path}"):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = _connect(self.path, self.synchronous)
            migrate(self._writer)
            self._reader = _connect(self.path, self.synchronous)
        self._commits = GroupCommitter(self._writer, inline=self.synchronous != "FULL")

    async def close(self) -> None:
        if self._commits is not None:
            await self._commits.drain()
            self._commits.close()
        for conn in (self._writer, self._reader):
            if conn is not None:
                conn.close()
        self._writer = self._reader = self._commits = None

    # -- writes (group-committed) ------------------------------------------------

    def _submit(self, op: Any) -> asyncio.Future[Any]:
        if self._commits is None:
            raise StoreError(f"{self!r} is not open; use it inside 'async with Runtime(...)'")
        return self._commits.submit(op)

    async def _write(self, action: str, op: Any) -> Any:
        with _translated(action):
            return await self._submit(op)

    async def create(self, wf: NewWorkflow) -> WorkflowRecord | None:
        def op(conn: sqlite3.Connection) -> WorkflowRecord | None:
            now = _now()
            cur = conn.execute(
                "INSERT INTO workflows (id, name, status, input, owner, lease_until,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO NOTHING",
                (wf.id, wf.name, "running" if wf.owner else "pending", wf.input,
                 wf.owner, wf.lease_until, now, now),
            )
            if cur.rowcount:
                return None
            row = conn.execute(
                f"SELECT {_WF_COLUMNS} FROM workflows WHERE id = ?", (wf.id,)
            ).fetchone()
            return _record(row)

        result: WorkflowRecord | None = await self._write(f"create workflow {wf.id!r}", op)
        return result

    def append(self, workflow_id: str, owner: str, step: StepRecord) -> asyncio.Future[bool]:
        params = (workflow_id, step.position, step.kind, step.name, step.ok, step.value,
                  step.created_at, workflow_id, owner)

        def op(conn: sqlite3.Connection) -> bool:
            # Fenced: written only while ``owner`` still holds the workflow.
            cur = conn.execute(
                "INSERT INTO steps (workflow_id, position, kind, name, ok, value, created_at)"
                " SELECT ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM workflows"
                " WHERE id = ? AND owner = ? AND status = 'running')",
                params,
            )
            return cur.rowcount == 1

        return self._submit(op)

    async def finish(
        self, workflow_id: str, owner: str, status: str, result: bytes | None, error: bytes | None
    ) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            now = _now()
            cur = conn.execute(
                "UPDATE workflows SET status = ?, result = ?, error = ?, owner = NULL,"
                " lease_until = 0, updated_at = ?, finished_at = ?"
                " WHERE id = ? AND owner = ? AND status = 'running'",
                (status, result, error, now, now, workflow_id, owner),
            )
            return cur.rowcount == 1

        done: bool = await self._write(f"finish workflow {workflow_id!r}", op)
        return done

    async def claim(
        self, owner: str, lease_until: float, now: float, limit: int, names: list[str]
    ) -> list[WorkflowRecord]:
        def op(conn: sqlite3.Connection) -> list[WorkflowRecord]:
            rows = conn.execute(
                "UPDATE workflows SET status = 'running', owner = ?, lease_until = ?,"
                " updated_at = ? WHERE id IN (SELECT id FROM workflows"
                " WHERE (status = 'pending' OR (status = 'running' AND lease_until < ?))"
                " AND name IN (SELECT value FROM json_each(?))"
                " ORDER BY created_at LIMIT ?)"
                f" RETURNING {_WF_COLUMNS}",
                (owner, lease_until, now, now, json.dumps(names), limit),
            ).fetchall()
            return [_record(r) for r in rows]

        claimed: list[WorkflowRecord] = await self._write("claim workflows", op)
        return claimed

    async def heartbeat(self, owner: str, lease_until: float) -> None:
        await self._write(
            "renew leases",
            lambda conn: conn.execute(
                "UPDATE workflows SET lease_until = ? WHERE owner = ? AND status = 'running'",
                (lease_until, owner),
            ),
        )

    async def release(self, owner: str, workflow_ids: list[str]) -> None:
        await self._write(
            "release leases",
            lambda conn: conn.executemany(
                "UPDATE workflows SET owner = NULL, lease_until = 0"
                " WHERE id = ? AND owner = ? AND status = 'running'",
                [(wid, owner) for wid in workflow_ids],
            ),
        )

    # -- reads -------------------------------------------------------------------

    def _read(self, action: str, sql: str, params: tuple[Any, ...]) -> list[Any]:
        if self._reader is None:
            raise StoreError(f"{self!r} is not open; use it inside 'async with Runtime(...)'")
        with _translated(action):
            return self._reader.execute(sql, params).fetchall()

    async def next_lease_expiry(self) -> float | None:
        rows = self._read(
            "read leases",
            "SELECT min(lease_until) FROM workflows WHERE status = 'running'", ())
        value = rows[0][0]
        return float(value) if value is not None else None

    async def get(self, workflow_id: str) -> WorkflowRecord | None:
        rows = self._read(
            f"read workflow {workflow_id!r}",
            f"SELECT {_WF_COLUMNS} FROM workflows WHERE id = ?", (workflow_id,))
        return _record(rows[0]) if rows else None

    async def history(self, workflow_id: str) -> list[StepRecord]:
        rows = self._read(
            f"read the history of {workflow_id!r}",
            "SELECT position, kind, name, ok, value, created_at FROM steps"
            " WHERE workflow_id = ?", (workflow_id,))
        return [StepRecord(p, k, n, bool(ok), v, t) for p, k, n, ok, v, t in rows]

    async def list(
        self, *, status: str | None, name: str | None, limit: int
    ) -> list[WorkflowRecord]:
        where, params = [], []
        if status is not None:
            where.append("status = ?")
            params.append(status)
        if name is not None:
            where.append("name = ?")
            params.append(name)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = self._read(
            "list workflows",
            f"SELECT {_WF_COLUMNS} FROM workflows{clause} ORDER BY created_at DESC LIMIT ?",
            (*params, limit))
        return [_record(r) for r in rows]


def _now() -> float:
    return time.time()
