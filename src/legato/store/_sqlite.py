"""The embedded store: one SQLite file in WAL mode.

One writer connection commits groups of writes (see ``_group_commit``); one
reader connection serves lookups, which WAL lets run beside the writer.
Several processes may open the same file: a claim is one write transaction
(``UPDATE ... RETURNING``; queue limits counted inside it, see
``_sqlite_queue``), so two processes never take the same workflow.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from typing import Any, final

from .._errors import LegatoError, StoreError, WorkflowNotFound
from . import _sqlite_streams as streams
from . import _sqlite_updates as updates
from ._forget import forgotten, stored_failed_at
from ._group_commit import GroupCommitter
from ._inspection import EventRecord, WorkflowQuery, query_sql
from ._protocol import (
    INFER,
    WF_COLUMNS,
    Infer,
    NewWorkflow,
    StepRecord,
    WorkflowRecord,
    check_resumable,
    new_run_id,
    news_of_start,
)
from ._sqlite_claims import SqliteClaims, _now
from ._sqlite_connect import connect as _connect
from ._sqlite_connect import parse_sqlite_url
from ._sqlite_debounce import debounce as debounce_start
from ._sqlite_errors import translated
from ._sqlite_file import FileWatch
from ._sqlite_news import NewsReader, announce
from ._sqlite_queue import check_dedup
from ._sqlite_schedules import SqliteSchedules
from ._sqlite_schema import migrate
from ._sqlite_wal import WalKeeper

__all__ = ["SqliteStore", "parse_sqlite_url"]

_FINISHED = ("succeeded", "failed", "cancelled")


def _record(row: tuple[Any, ...]) -> WorkflowRecord:
    record = WorkflowRecord(*row)
    object.__setattr__(record, "cancel", bool(record.cancel))
    return record


def _select_one(conn: sqlite3.Connection, workflow_id: str) -> WorkflowRecord | None:
    row = conn.execute(f"SELECT {WF_COLUMNS} FROM workflows WHERE id = ?", (workflow_id,)
                       ).fetchone()
    return _record(row) if row is not None else None


def _insert_step(conn: sqlite3.Connection, workflow_id: str, owner: str, step: StepRecord,
                 value: bytes | None) -> bool:
    # Fenced: written only while ``owner`` still holds the workflow.
    cur = conn.execute(
        "INSERT INTO steps (workflow_id, position, kind, name, ok, value, created_at)"
        " SELECT ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM workflows"
        " WHERE id = ? AND owner = ? AND status = 'running')",
        (workflow_id, step.position, step.kind, step.name, step.ok, value, step.created_at,
         workflow_id, owner),
    )
    return cur.rowcount == 1


@final
class SqliteStore(SqliteClaims, SqliteSchedules):
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
        self._wal: WalKeeper | None = None
        self._news = NewsReader(lambda sql, params: self._read("read news", sql, params),
                                self._prune_news)

    def __repr__(self) -> str:
        return f"SqliteStore({self.url!r})"

    async def open(self) -> None:
        with translated("open the database", self.path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = _connect(self.path, self.synchronous)
            watch = FileWatch(self.path)
            migrate(self._writer)
            self._reader = _connect(self.path, self.synchronous)
        self._wal = WalKeeper(self.path)
        self._commits = GroupCommitter(self._writer, watch, self._wal,
                                       inline=self.synchronous != "FULL")

    async def close(self) -> None:
        if self._commits is not None:
            await self._commits.drain()
            self._commits.close()
        if self._wal is not None:
            self._wal.close()
        for conn in (self._writer, self._reader):
            if conn is not None:
                conn.close()
        self._writer = self._reader = self._commits = self._wal = None

    # -- writes (group-committed) ------------------------------------------------

    def _submit(self, op: Any, action: str) -> asyncio.Future[Any]:
        """``op`` in the next group commit; its future fails with a :class:`StoreError`."""
        if self._commits is None:
            raise StoreError(f"{self!r} is not open; use it inside 'async with Runtime(...)'")
        return self._commits.submit(op, action)

    async def _write(self, action: str, op: Any) -> Any:
        return await self._submit(op, action)

    async def create(self, wf: NewWorkflow) -> WorkflowRecord | None:
        called = time.monotonic()

        def op(conn: sqlite3.Connection) -> WorkflowRecord | None:
            now = _now()
            # created running: its lease starts now, not when it was asked for (see claim)
            lease_until = wf.lease_until + (time.monotonic() - called) if wf.owner else 0.0
            check_dedup(conn, wf)
            cur = conn.execute(
                "INSERT INTO workflows (id, name, status, input, owner, lease_until,"
                " parent_id, deadline, created_at, updated_at, queue, priority, not_before,"
                " dedup_key, run_id, ready, key)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO NOTHING",
                (wf.id, wf.name, "running" if wf.owner else "pending", wf.input,
                 wf.owner, lease_until, wf.parent_id, wf.deadline, now, now,
                 wf.queue, wf.priority, wf.not_before, wf.dedup_key, wf.run_id,
                 not wf.owner and wf.not_before is None, wf.key),
            )
            if not cur.rowcount:
                return _select_one(conn, wf.id)
            if wf.copy_from is not None:  # a fork: the source's records before a position
                conn.execute(
                    "INSERT INTO steps SELECT ?, position, kind, name, ok, value, created_at"
                    " FROM steps WHERE workflow_id = ? AND"
                    " CAST(substr(position, 1, instr(position || '.', '.') - 1) AS INTEGER) < ?",
                    (wf.id, *wf.copy_from))
            if not wf.owner:
                announce(conn, news_of_start(wf), wf.id)
            return None

        result: WorkflowRecord | None = await self._write(f"create workflow {wf.id!r}", op)
        return result

    async def debounce(self, wf: NewWorkflow, key: str, until: float | None
                       ) -> WorkflowRecord | None:
        result: WorkflowRecord | None = await self._write(
            f"debounce workflow {wf.id!r}",
            lambda conn: debounce_start(conn, wf, key, until, _now()))
        return result

    def append(self, workflow_id: str, owner: str, step: StepRecord) -> asyncio.Future[bool]:
        return self._submit(lambda conn: _insert_step(conn, workflow_id, owner, step, step.value),
                            "record a checkpoint")

    async def finish(
        self, workflow_id: str, owner: str, status: str, result: bytes | None,
        error: bytes | None, failed_at: str | Infer | None = INFER,
    ) -> bool:
        stored = stored_failed_at(status, failed_at)

        def op(conn: sqlite3.Connection) -> bool:
            now = _now()
            row = conn.execute(
                "UPDATE workflows SET status = ?, result = ?, error = ?, owner = NULL,"
                " lease_until = 0, wake_at = NULL, cancel = 0, ready = 0, updated_at = ?,"
                " finished_at = ?, failed_at = ? WHERE id = ? AND owner = ? AND status = 'running'"
                " RETURNING parent_id",
                (status, result, error, now, now, stored, workflow_id, owner),
            ).fetchone()
            if row is None:
                return False
            announce(conn, "finish", workflow_id)
            if row[0] is not None:  # a parent waiting on this child wakes up
                self._wake(conn, row[0])
            return True

        done: bool = await self._write(f"finish workflow {workflow_id!r}", op)
        return done

    async def send_signal(
        self, workflow_id: str, name: str, payload: bytes,
        sender: tuple[str, str, StepRecord] | None = None,
    ) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            record = _select_one(conn, workflow_id)
            if record is None:
                raise WorkflowNotFound(workflow_id)
            if record.status in _FINISHED:
                raise LegatoError(
                    f"workflow {workflow_id!r} has already {record.status}; signal "
                    f"{name!r} was not stored. Check handle.status() before signalling")
            if sender is not None and not _insert_step(conn, *sender, None):
                return False
            conn.execute(
                "INSERT INTO signals (workflow_id, name, payload, created_at)"
                " VALUES (?, ?, ?, ?)", (workflow_id, name, payload, _now()))
            announce(conn, "signal", workflow_id)
            self._wake(conn, workflow_id)
            return True

        sent: bool = await self._write(f"signal workflow {workflow_id!r}", op)
        return sent

    async def take_signal(
        self, workflow_id: str, owner: str, name: str, step: StepRecord
    ) -> tuple[str, bytes | None]:
        def op(conn: sqlite3.Connection) -> tuple[str, bytes | None]:
            row = conn.execute(
                "SELECT seq, payload FROM signals WHERE workflow_id = ? AND name = ?"
                " AND consumed_at IS NULL ORDER BY seq LIMIT 1", (workflow_id, name)).fetchone()
            if row is None:
                return "none", None
            if not _insert_step(conn, workflow_id, owner, step, row[1]):
                return "lost", None
            conn.execute("UPDATE signals SET consumed_at = ? WHERE seq = ?",
                         (step.position, row[0]))
            return "taken", row[1]

        taken: tuple[str, bytes | None] = await self._write(
            f"take signal {name!r} of {workflow_id!r}", op)
        return taken

    async def continue_as_new(self, workflow_id: str, owner: str, input: bytes) -> str | None:
        run_id = new_run_id()

        def op(conn: sqlite3.Connection) -> str | None:
            row = conn.execute("SELECT run_id FROM workflows WHERE id = ? AND owner = ?"
                               " AND status = 'running'", (workflow_id, owner)).fetchone()
            if row is None:
                return None
            conn.execute("DELETE FROM previous_steps WHERE workflow_id = ?", (workflow_id,))
            conn.execute(
                "INSERT INTO previous_steps SELECT workflow_id, ?, position, kind, name, ok,"
                " value, created_at FROM steps WHERE workflow_id = ?", (row[0], workflow_id))
            conn.execute("DELETE FROM steps WHERE workflow_id = ?", (workflow_id,))
            conn.execute(
                "UPDATE workflows SET input = ?, run_id = ?, recoveries = 0, previous_run_id = ?,"
                " updated_at = ? WHERE id = ?", (input, run_id, row[0], _now(), workflow_id))
            return run_id

        done: str | None = await self._write(f"continue {workflow_id!r} as new", op)
        return done

    async def untake_signal(self, workflow_id: str, owner: str, position: str) -> None:
        def op(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE signals SET consumed_at = NULL WHERE workflow_id = ?"
                         " AND consumed_at = ?", (workflow_id, position))
            conn.execute("DELETE FROM steps WHERE workflow_id = ? AND position = ?",
                         (workflow_id, position))

        await self._write(f"give back a signal of {workflow_id!r}", op)

    async def set_event(
        self, workflow_id: str, owner: str, key: str, value: bytes, step: StepRecord | None
    ) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            if step is None:
                if not conn.execute(
                        "SELECT 1 FROM workflows WHERE id = ? AND owner = ? AND status = 'running'",
                        (workflow_id, owner)).fetchone():
                    return False
            elif not _insert_step(conn, workflow_id, owner, step, None):
                return False
            conn.execute(
                "INSERT INTO events (workflow_id, key, value, updated_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (workflow_id, key) DO UPDATE SET value = excluded.value,"
                " updated_at = excluded.updated_at", (workflow_id, key, value, _now()))
            announce(conn, "event", workflow_id)
            return True

        done: bool = await self._write(f"set event {key!r} of {workflow_id!r}", op)
        return done

    async def request_cancel(self, workflow_id: str) -> WorkflowRecord:
        def op(conn: sqlite3.Connection) -> WorkflowRecord:
            now = _now()
            if conn.execute(
                    "UPDATE workflows SET status = 'cancelled', ready = 0, finished_at = ?,"
                    " updated_at = ? WHERE id = ? AND status = 'pending'",
                    (now, now, workflow_id)).rowcount:
                announce(conn, "finish", workflow_id)
            if conn.execute(
                    "UPDATE workflows SET cancel = 1, updated_at = ?"
                    " WHERE id = ? AND status IN ('running', 'waiting')",
                    (now, workflow_id)).rowcount:
                announce(conn, "cancel", workflow_id)
            self._wake(conn, workflow_id)
            record = _select_one(conn, workflow_id)
            if record is None:
                raise WorkflowNotFound(workflow_id)
            return record

        record: WorkflowRecord = await self._write(f"cancel workflow {workflow_id!r}", op)
        return record

    async def resume(self, workflow_id: str) -> WorkflowRecord:
        def op(conn: sqlite3.Connection) -> WorkflowRecord:
            record = _select_one(conn, workflow_id)
            if record is None:
                raise WorkflowNotFound(workflow_id)
            if record.status == "succeeded":
                return record
            if record.status == "pending":  # queued or delayed: started now, past the queue
                conn.execute("UPDATE workflows SET queue = NULL, not_before = NULL, ready = 1,"
                             " updated_at = ? WHERE id = ?", (_now(), workflow_id))
                announce(conn, "pending", workflow_id)
                return _select_one(conn, workflow_id) or record
            check_resumable(record)
            (failed_at,) = conn.execute(
                "SELECT failed_at FROM workflows WHERE id = ?", (workflow_id,)).fetchone()
            steps = conn.execute("SELECT position, ok FROM steps WHERE workflow_id = ?",
                                 (workflow_id,)).fetchall()
            conn.executemany(
                "DELETE FROM steps WHERE workflow_id = ? AND position = ?",
                [(workflow_id, p) for p in forgotten(record.status, failed_at, steps)])
            conn.execute(
                "UPDATE workflows SET status = 'pending', error = NULL, result = NULL,"
                " cancel = 0, owner = NULL, lease_until = 0, wake_at = NULL, not_before = NULL,"
                " ready = 1,"
                " finished_at = NULL, failed_at = NULL, recoveries = 0, updated_at = ?, run_id = ?"
                " WHERE id = ?",
                (_now(), new_run_id(), workflow_id))
            announce(conn, "pending", workflow_id)
            resumed = _select_one(conn, workflow_id)
            assert resumed is not None
            return resumed

        record: WorkflowRecord = await self._write(f"resume workflow {workflow_id!r}", op)
        return record

    # -- news --------------------------------------------------------------------

    async def wait_for_news(self, timeout: float) -> list[tuple[str, str]]:
        """Wait up to ``timeout`` s for news from any process on this file (this one too).

        The kinds are ``PostgresStore.wait_for_news``'s; ``[]`` means the
        timeout passed.
        """
        return await self._news.wait(timeout)

    async def follow_ends(self, on: bool) -> None:
        """Nothing to do: every process reads the news table's rows anyway (see ``News``)."""

    def _prune_news(self, upto: int) -> None:
        # Best effort: a failed prune is covered by the next one.
        pruned = self._submit(lambda conn: conn.execute(
            "DELETE FROM news WHERE seq <= ?", (upto,)), "prune news")
        pruned.add_done_callback(lambda f: f.cancelled() or f.exception())

    def _wake(self, conn: sqlite3.Connection, workflow_id: str) -> None:
        """A waiting workflow becomes claimable now (it re-checks what it waits for)."""
        if conn.execute("UPDATE workflows SET wake_at = 0, ready = 1"
                        " WHERE id = ? AND status = 'waiting'", (workflow_id,)).rowcount:
            announce(conn, "wake", workflow_id)

    # -- reads -------------------------------------------------------------------

    def _reading(self) -> sqlite3.Connection:
        """The connection for a read on the loop: the writer's when it is idle, else the reader.

        Whenever a connection starts reading after another one wrote, SQLite
        drops its whole page cache: on the reader, every first read after a
        commit paid for that (a point lookup after a commit: 11 µs on the
        reader, 7 on the writer, in a table of 5,000 rows; more as the file
        grows). The writer's cache holds what it wrote. Between group commits made inline it is
        in no transaction and sees exactly what the reader would; while its
        thread commits (``synchronous=FULL``, a lock held by another process)
        reads go to the reader, as they must not see a transaction in flight.
        """
        commits = self._commits
        if commits is not None and commits.idle():
            assert self._writer is not None
            return self._writer
        if self._reader is None:
            raise StoreError(f"{self!r} is not open; use it inside 'async with Runtime(...)'")
        return self._reader

    def _read(self, action: str, sql: str, params: tuple[Any, ...]) -> list[Any]:
        conn = self._reading()
        with translated(action, self.path):
            return conn.execute(sql, params).fetchall()

    async def get_event(self, workflow_id: str, key: str) -> tuple[bool, bytes | None]:
        rows = self._read(
            f"read event {key!r} of {workflow_id!r}",
            "SELECT value FROM events WHERE workflow_id = ? AND key = ?", (workflow_id, key))
        return (True, rows[0][0]) if rows else (False, None)

    async def children(self, workflow_id: str) -> list[str]:
        rows = self._read(
            f"read the children of {workflow_id!r}",
            "SELECT id FROM workflows WHERE parent_id = ? AND status NOT IN"
            " ('succeeded', 'failed', 'cancelled')", (workflow_id,))
        return [r[0] for r in rows]

    async def get(self, workflow_id: str) -> WorkflowRecord | None:
        rows = self._read(
            f"read workflow {workflow_id!r}",
            f"SELECT {WF_COLUMNS} FROM workflows WHERE id = ?", (workflow_id,))
        return _record(rows[0]) if rows else None

    async def history(self, workflow_id: str, run_id: str | None = None) -> list[StepRecord]:
        if run_id is None:
            rows = self._read(
                f"read the history of {workflow_id!r}",
                "SELECT position, kind, name, ok, value, created_at FROM steps"
                " WHERE workflow_id = ?", (workflow_id,))
        else:
            rows = self._read(
                f"read the history of {workflow_id!r}, run {run_id!r}",
                "SELECT position, kind, name, ok, value, created_at FROM previous_steps"
                " WHERE workflow_id = ? AND run_id = ?", (workflow_id, run_id))
        return [StepRecord(p, k, n, bool(ok), v, t) for p, k, n, ok, v, t in rows]

    async def find(self, query: WorkflowQuery) -> list[WorkflowRecord]:
        sql, params = query_sql(query, WF_COLUMNS, lambda n: "?")
        return [_record(r) for r in self._read("find workflows", sql, tuple(params))]

    async def events(self, workflow_id: str) -> list[EventRecord]:
        rows = self._read(
            f"read the events of {workflow_id!r}",
            "SELECT key, value, updated_at FROM events WHERE workflow_id = ? ORDER BY key",
            (workflow_id,))
        return [EventRecord(k, v, t) for k, v, t in rows]

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
            f"SELECT {WF_COLUMNS} FROM workflows{clause} ORDER BY created_at DESC LIMIT ?",
            (*params, limit))
        return [_record(r) for r in rows]

    # -- streams and updates (see _sqlite_streams, _sqlite_updates) ------------------

    async def write_stream(self, workflow_id: str, owner: str, key: str, origin: str,
                           value: bytes | None, step: StepRecord | None = None) -> str:
        done: str = await self._write(
            f"write stream {key!r} of {workflow_id!r}",
            streams.write_op(workflow_id, owner, key, origin, value, step))
        return done

    async def read_stream(self, workflow_id: str, key: str, offset: int, limit: int
                          ) -> streams.Rows:
        rows = self._read(f"read stream {key!r} of {workflow_id!r}", streams.READ_SQL,
                          (workflow_id, key, offset, limit))
        return [(seq, value) for seq, value in rows]

    async def send_update(self, workflow_id: str, update_id: str, name: str,
                          payload: bytes) -> None:
        await self._write(f"send update {name!r} to {workflow_id!r}",
                          updates.send_op(workflow_id, update_id, name, payload, self._wake))

    async def take_update(self, workflow_id: str, owner: str, name: str, step: StepRecord
                          ) -> tuple[str, bytes | None]:
        taken: tuple[str, bytes | None] = await self._write(
            f"take update {name!r} of {workflow_id!r}",
            updates.take_op(workflow_id, owner, name, step))
        return taken

    async def reply_update(self, workflow_id: str, owner: str, update_id: str, reply: bytes,
                           step: StepRecord) -> bool:
        done: bool = await self._write(
            f"reply to update {update_id!r} of {workflow_id!r}",
            updates.reply_op(workflow_id, owner, update_id, reply, step))
        return done

    async def update_reply(self, workflow_id: str, update_id: str
                           ) -> tuple[bool, bytes | None]:
        rows = self._read(f"read the reply to update {update_id!r}", updates.REPLY_SQL,
                          (workflow_id, update_id))
        return (bool(rows[0][0]), rows[0][1]) if rows else (False, None)
