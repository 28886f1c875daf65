"""The shared store: PostgreSQL through asyncpg, for many workers on many machines.

Claims are one ``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)``,
so concurrent workers never take the same workflow and never wait on each
other. Every write on behalf of a worker is fenced: it checks, in the same
statement or transaction, that the worker still owns the workflow and that it
is running. Checkpoints of one loop turn go in one round trip (see
``_postgres_batch``). Commits that other processes care about (a workflow
enqueued, signalled, woken, finished) send a ``NOTIFY``; :meth:`wait_for_news`
listens for them.

URL: ``postgresql://user:password@host:port/db?schema=name``; ``schema``
(default ``legato``) is the PostgreSQL schema holding legato's tables, every
other parameter goes to asyncpg.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, final

import asyncpg

from .._errors import LegatoError, StoreError, WorkflowNotFound
from .._redact import redact_url
from . import _postgres_streams as streams
from . import _postgres_updates as updates
from ._forget import forgotten, stored_failed_at
from ._inspection import EventRecord, WorkflowQuery, query_sql
from ._postgres_batch import APPEND_SQL, AppendBatcher, Item, append_args
from ._postgres_claims import _ANNOUNCE, _ANNOUNCE_FINISH, _FINISHED, _ID_KEPT, PostgresClaims
from ._postgres_connect import News, news_channels, parse_postgres_url, translated
from ._postgres_debounce import debounce as debounce_start
from ._postgres_pool import Connections, keep_session
from ._postgres_queue import check_dedup
from ._postgres_schedules import PostgresSchedules
from ._postgres_schema import migrate
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

__all__ = ["PostgresStore", "parse_postgres_url"]

T = TypeVar("T")

_RETRIES = 3  # a transaction chosen as a deadlock victim runs again


def _create_sql(announce: bool) -> str:
    """The INSERT of :meth:`PostgresStore.create`: a row if inserted (announced, if asked)."""
    first = 3 if announce else 1  # after _ANNOUNCE's $1 and $2
    marks = [f"${first + i}" for i in range(16)]
    marks.insert(9, marks[8])  # updated_at = created_at
    sql = ("INSERT INTO workflows (id, name, status, input, owner, lease_until, parent_id,"
           " deadline, created_at, updated_at, queue, priority, not_before, dedup_key, run_id,"
           f" ready, key) VALUES ({', '.join(marks)}) ON CONFLICT (id) DO NOTHING")
    return f"WITH w AS ({sql} RETURNING id) {_ANNOUNCE}" if announce else f"{sql} RETURNING 1"


# Each answers one row of 1 when inserted; a pending one announces itself, in the same statement.
_CREATE_PENDING, _CREATE_RUNNING = _create_sql(True), _create_sql(False)


def _record(row: Any) -> WorkflowRecord:
    return WorkflowRecord(*row)


@final
class PostgresStore(PostgresClaims, PostgresSchedules):
    """A :class:`~legato.store.Store` on a PostgreSQL database, shared by many workers.

    Example::

        store = PostgresStore("postgresql://legato@db.internal/prod?schema=legato")

    Args:
        url: ``postgresql://...``; ``?schema=`` names the PostgreSQL schema (default
            ``legato``), created on first use.
        pool_size: connections in the pool, one of them held for calls of a
            single statement (see ``_postgres_pool``); one more listens for news.
    """

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = redact_url(url)  # for display (reprs, logs): it connects with self.dsn
        self.dsn, self.schema = parse_postgres_url(url)
        # finishes and events come on the second: news only for who waits on them
        # (see follow_ends)
        self.channel, self.ends_channel = news_channels(self.schema)
        self.pool_size = pool_size
        self._conns: Connections | None = None
        self._news = News(self.dsn, self.channel, self.ends_channel, self._settings())
        self._appends = AppendBatcher(self._insert_steps)

    def __repr__(self) -> str:
        return f"PostgresStore({self.url!r})"

    async def open(self) -> None:
        with translated(f"connect to {redact_url(self.dsn)!r}"):
            pool = await asyncpg.create_pool(
                self.dsn, min_size=1, max_size=self.pool_size,
                server_settings=self._settings(), reset=keep_session)
            conns = Connections(pool, hold=self.pool_size > 1)
            try:
                async with pool.acquire() as conn:
                    await migrate(conn, self.schema)
                await self._news.listen()
                await conns.open()
            except BaseException:
                await conns.close()
                raise
        self._conns = conns

    async def close(self) -> None:
        await self._appends.barrier()
        await self._news.close()
        if self._conns is not None:
            await self._conns.close()
        self._conns = None

    def _settings(self) -> dict[str, str]:
        return {"search_path": f'"{self.schema}"', "application_name": "legato"}

    async def wait_for_news(self, timeout: float) -> list[tuple[str, str]]:
        """Wait up to ``timeout`` seconds for news from any process on this database.

        News is ``(kind, workflow_id)``, kind one of ``"pending"`` (enqueued,
        resumed or released: claimable now), ``"signal"``, ``"wake"`` (a
        waiting workflow is due now), ``"timer"`` (a workflow suspended until
        a time), ``"cancel"`` (asked of a running one), ``"event"`` (it set
        an event) and ``"finish"``. News
        that came since the previous call returns at once; ``[]`` means the
        timeout passed. Only PostgreSQL stores have this: a worker should
        still poll, slowly, as a safety net (news sent while the listening
        connection was down is lost; it reconnects on the next call).
        """
        return await self._news.wait(timeout)

    async def follow_ends(self, on: bool) -> None:
        """Hear ``"finish"`` and ``"event"`` news (``on``), or stop hearing it.

        Every process LISTENing on a channel is sent every notification on
        it: with finishes on the main channel, each finish cost every worker
        a wake-up, though only a process awaiting a result (or an event, a
        stream, an update's reply) uses it. They come on a channel of their
        own, which a process follows while it has such a waiter. A finish of
        a queued workflow still comes on the main channel too: it frees a
        slot of its queue, for any worker. In effect once this returns.
        """
        await self._news.follow_ends(on)

    # -- plumbing ------------------------------------------------------------------

    def _open(self) -> Connections:
        if self._conns is None:
            raise StoreError(f"{self!r} is not open; use it inside 'async with Runtime(...)'")
        return self._conns

    async def _read(self, action: str, sql: str, *args: Any) -> list[Any]:
        conns = self._open()
        with translated(action):
            async with conns.one() as conn:
                rows: list[Any] = await conn.fetch(sql, *args)
                return rows

    async def _write(self, action: str, sql: str, *args: Any) -> list[Any]:
        """One statement (one implicit transaction), after earlier appends."""
        await self._appends.barrier()
        return await self._read(action, sql, *args)

    async def _tx(self, action: str, body: Callable[[Any], Awaitable[T]]) -> T:
        """``body(conn)`` in one transaction, after earlier appends; deadlock victims retry."""
        await self._appends.barrier()
        pool = self._open().pool
        for attempt in range(_RETRIES):
            try:
                with translated(action):
                    async with pool.acquire() as conn, conn.transaction():
                        return await body(conn)
            except StoreError as exc:
                if attempt + 1 == _RETRIES or not isinstance(
                        exc.__cause__, asyncpg.DeadlockDetectedError):
                    raise
        raise AssertionError("unreachable")

    async def _tx_free(self, action: str, body: Callable[[Any], Awaitable[T]]) -> T:
        """``body(conn)`` outside a transaction, after earlier appends."""
        await self._appends.barrier()
        conns = self._open()
        with translated(action):
            async with conns.one() as conn:
                return await body(conn)

    async def _insert_steps(self, batch: list[Item]) -> set[tuple[str, str]]:
        conns = self._open()
        with translated(f"record {len(batch)} checkpoint(s)"):
            async with conns.one() as conn:
                rows = await conn.fetch(
                    APPEND_SQL, *append_args([(w, o, s, s.value) for w, o, s, _ in batch]))
        return {(r[0], r[1]) for r in rows}

    async def _notify(self, conn: Any, kind: str, workflow_id: str, *,
                      queued: bool = False) -> None:
        """Announce ``kind`` news; a finish or an event only to followers of ends."""
        fits = len(workflow_id.encode()) < _ID_KEPT
        ends = kind == "event" or (kind == "finish" and not queued)
        await conn.execute("SELECT pg_notify($1, $2)", self.ends_channel if ends else self.channel,
                           f"{kind} {workflow_id}" if fits else kind)

    async def _wake(self, conn: Any, workflow_id: str) -> None:
        """A waiting workflow becomes claimable now (it re-checks what it waits for)."""
        await conn.execute(
            "WITH w AS (UPDATE workflows SET wake_at = 0, ready = true"
            " WHERE id = $3 AND status = 'waiting'"
            f" RETURNING id) {_ANNOUNCE}", self.channel, "wake", workflow_id)

    # -- writes ----------------------------------------------------------------------

    async def create(self, wf: NewWorkflow) -> WorkflowRecord | None:
        status = "running" if wf.owner else "pending"
        insert = _CREATE_RUNNING if status == "running" else _CREATE_PENDING
        called = time.monotonic()

        def args() -> tuple[Any, ...]:
            # created running: its lease starts now, not when it was asked for (see claim)
            lease_until = wf.lease_until + (time.monotonic() - called) if wf.owner else 0.0
            values = (
                wf.id, wf.name, status, wf.input, wf.owner, lease_until, wf.parent_id,
                wf.deadline, time.time(), wf.queue, wf.priority, wf.not_before, wf.dedup_key,
                wf.run_id, status == "pending" and wf.not_before is None, wf.key)
            return values if status == "running" else (self.channel, news_of_start(wf), *values)

        if (wf.dedup_key is None or wf.queue is None) and wf.copy_from is None:  # one statement
            await self._appends.barrier()
            rows = await self._read(f"create workflow {wf.id!r}", insert, *args())
            if rows and rows[0][0]:
                return None
            return await self.get(wf.id)

        async def body(conn: Any) -> WorkflowRecord | None:
            await check_dedup(conn, wf)
            if not await conn.fetchval(insert, *args()):
                return await self._select_one(conn, wf.id)
            if wf.copy_from is not None:  # a fork: the source's records before a position
                await conn.execute(
                    "INSERT INTO steps SELECT $1, position, kind, name, ok, value, created_at"
                    " FROM steps WHERE workflow_id = $2 AND split_part(position, '.', 1)::int < $3",
                    wf.id, *wf.copy_from)
            return None

        for attempt in range(2):
            try:
                return await self._tx(f"create workflow {wf.id!r}", body)
            except StoreError as exc:
                # Another process took the dedup key between our check and insert:
                # the second check names it.
                cause = exc.__cause__
                if attempt or not isinstance(cause, asyncpg.UniqueViolationError) or (
                        cause.constraint_name != "workflows_dedup"):
                    raise
        raise AssertionError("unreachable")

    async def debounce(self, wf: NewWorkflow, key: str, until: float | None
                       ) -> WorkflowRecord | None:
        return await self._tx_free(
            f"debounce workflow {wf.id!r}",
            lambda conn: debounce_start(conn, self.channel, wf, key, until, time.time()))

    def append(self, workflow_id: str, owner: str, step: StepRecord) -> asyncio.Future[bool]:
        self._open()
        return self._appends.submit(workflow_id, owner, step)

    async def finish(
        self, workflow_id: str, owner: str, status: str, result: bytes | None,
        error: bytes | None, failed_at: str | Infer | None = INFER,
    ) -> bool:
        stored = stored_failed_at(status, failed_at)

        now = time.time()
        # A workflow without a parent: one statement, the row (fenced) and its news.
        rows = await self._write(
            f"finish workflow {workflow_id!r}",
            "WITH w AS (UPDATE workflows SET status = $3, result = $4, error = $5,"
            " owner = NULL, lease_until = 0, wake_at = NULL, cancel = false, ready = false,"
            " updated_at = $6, finished_at = $6, failed_at = $9 WHERE id = $7 AND owner = $8"
            " AND status = 'running' AND parent_id IS NULL RETURNING id, queue)"
            f" {_ANNOUNCE_FINISH}",
            self.channel, "finish", status, result, error, now, workflow_id, owner, stored,
            self.ends_channel)
        if rows[0][0]:
            return True

        # A child (or a lost lease): its parent, if waiting, is woken in the same
        # transaction by a statement of its own, which sees a suspend of the parent
        # that committed while this one waited for the child's row (see suspend).
        async def body(conn: Any) -> bool:
            row = await conn.fetchrow(
                "UPDATE workflows SET status = $1, result = $2, error = $3, owner = NULL,"
                " lease_until = 0, wake_at = NULL, cancel = false, ready = false,"
                " updated_at = $4, finished_at = $4, failed_at = $7 WHERE id = $5"
                " AND owner = $6 AND status = 'running' RETURNING parent_id, queue",
                status, result, error, now, workflow_id, owner, stored)
            if row is None:
                return False
            await self._notify(conn, "finish", workflow_id, queued=row[1] is not None)
            if row[0] is not None:  # a parent waiting on this child wakes up
                await self._wake(conn, row[0])
            return True

        return await self._tx(f"finish workflow {workflow_id!r}", body)

    async def send_signal(
        self, workflow_id: str, name: str, payload: bytes,
        sender: tuple[str, str, StepRecord] | None = None,
    ) -> bool:
        async def body(conn: Any) -> bool:
            # FOR UPDATE: a concurrent suspend of the receiver waits for this
            # signal to commit and then sees it (see suspend)
            status = await conn.fetchval(
                "SELECT status FROM workflows WHERE id = $1 FOR UPDATE", workflow_id)
            if status is None:
                raise WorkflowNotFound(workflow_id)
            if status in _FINISHED:
                raise LegatoError(
                    f"workflow {workflow_id!r} has already {status}; signal "
                    f"{name!r} was not stored. Check handle.status() before signalling")
            if sender is not None and not await self._insert_step(conn, *sender, None):
                return False
            await conn.execute(
                "INSERT INTO signals (workflow_id, name, payload, created_at)"
                " VALUES ($1, $2, $3, $4)", workflow_id, name, payload, time.time())
            await self._notify(conn, "signal", workflow_id)
            await self._wake(conn, workflow_id)
            return True

        return await self._tx(f"signal workflow {workflow_id!r}", body)

    async def _insert_step(self, conn: Any, workflow_id: str, owner: str, step: StepRecord,
                           value: bytes | None) -> bool:
        rows = await conn.fetch(APPEND_SQL, *append_args([(workflow_id, owner, step, value)]))
        return bool(rows)

    async def take_signal(
        self, workflow_id: str, owner: str, name: str, step: StepRecord
    ) -> tuple[str, bytes | None]:
        async def body(conn: Any) -> tuple[str, bytes | None]:
            # SKIP LOCKED: two branches taking at once get two signals, oldest first
            row = await conn.fetchrow(
                "SELECT seq, payload FROM signals WHERE workflow_id = $1 AND name = $2"
                " AND consumed_at IS NULL ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED",
                workflow_id, name)
            if row is None:
                return "none", None
            if not await self._insert_step(conn, workflow_id, owner, step, row[1]):
                return "lost", None
            await conn.execute("UPDATE signals SET consumed_at = $1 WHERE seq = $2",
                               step.position, row[0])
            return "taken", row[1]

        return await self._tx(f"take signal {name!r} of {workflow_id!r}", body)

    async def continue_as_new(self, workflow_id: str, owner: str, input: bytes) -> str | None:
        run_id = new_run_id()

        async def body(conn: Any) -> str | None:
            old = await conn.fetchval(
                "SELECT run_id FROM workflows WHERE id = $1 AND owner = $2"
                " AND status = 'running' FOR UPDATE", workflow_id, owner)
            if old is None:
                return None
            await conn.execute("DELETE FROM previous_steps WHERE workflow_id = $1", workflow_id)
            await conn.execute(
                "INSERT INTO previous_steps SELECT workflow_id, $2, position, kind, name, ok,"
                " value, created_at FROM steps WHERE workflow_id = $1", workflow_id, old)
            await conn.execute("DELETE FROM steps WHERE workflow_id = $1", workflow_id)
            await conn.execute(
                "UPDATE workflows SET input = $2, run_id = $3, previous_run_id = $4,"
                " recoveries = 0, updated_at = $5 WHERE id = $1",
                workflow_id, input, run_id, old, time.time())
            return run_id

        return await self._tx(f"continue {workflow_id!r} as new", body)

    async def untake_signal(self, workflow_id: str, owner: str, position: str) -> None:
        async def body(conn: Any) -> None:
            await conn.execute("UPDATE signals SET consumed_at = NULL WHERE workflow_id = $1"
                               " AND consumed_at = $2", workflow_id, position)
            await conn.execute("DELETE FROM steps WHERE workflow_id = $1 AND position = $2",
                               workflow_id, position)

        await self._tx(f"give back a signal of {workflow_id!r}", body)

    async def set_event(
        self, workflow_id: str, owner: str, key: str, value: bytes, step: StepRecord | None
    ) -> bool:
        async def body(conn: Any) -> bool:
            if step is None:
                if await conn.fetchval(
                        "SELECT 1 FROM workflows WHERE id = $1 AND owner = $2"
                        " AND status = 'running' FOR SHARE", workflow_id, owner) is None:
                    return False
            elif not await self._insert_step(conn, workflow_id, owner, step, None):
                return False
            await conn.execute(
                "INSERT INTO events (workflow_id, key, value, updated_at)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT (workflow_id, key) DO UPDATE"
                " SET value = excluded.value, updated_at = excluded.updated_at",
                workflow_id, key, value, time.time())
            await self._notify(conn, "event", workflow_id)
            return True

        return await self._tx(f"set event {key!r} of {workflow_id!r}", body)

    async def request_cancel(self, workflow_id: str) -> WorkflowRecord:
        async def body(conn: Any) -> WorkflowRecord:
            now = time.time()
            row = await conn.fetchrow(
                "SELECT status FROM workflows WHERE id = $1 FOR UPDATE", workflow_id)
            if row is None:
                raise WorkflowNotFound(workflow_id)
            if row[0] == "pending":
                await conn.execute(
                    "UPDATE workflows SET status = 'cancelled', ready = false, finished_at = $1,"
                    " updated_at = $1 WHERE id = $2", now, workflow_id)
                await self._notify(conn, "finish", workflow_id)
            elif row[0] in ("running", "waiting"):
                await conn.execute(
                    "UPDATE workflows SET cancel = true, updated_at = $1 WHERE id = $2",
                    now, workflow_id)
                await self._notify(conn, "cancel", workflow_id)
                await self._wake(conn, workflow_id)
            return await self._select_one(conn, workflow_id)

        return await self._tx(f"cancel workflow {workflow_id!r}", body)

    async def resume(self, workflow_id: str) -> WorkflowRecord:
        async def body(conn: Any) -> WorkflowRecord:
            row = await conn.fetchrow(
                f"SELECT {WF_COLUMNS}, failed_at FROM workflows WHERE id = $1 FOR UPDATE",
                workflow_id)
            if row is None:
                raise WorkflowNotFound(workflow_id)
            record, failed_at = _record(tuple(row)[:-1]), row["failed_at"]
            status = record.status
            if status == "succeeded":
                return record
            if status == "pending":  # queued or delayed: started now, past the queue
                await conn.execute(
                    "UPDATE workflows SET queue = NULL, not_before = NULL, ready = true,"
                    " updated_at = $1 WHERE id = $2", time.time(), workflow_id)
                await self._notify(conn, "pending", workflow_id)
                return await self._select_one(conn, workflow_id)
            check_resumable(record)
            steps = await conn.fetch(
                "SELECT position, ok FROM steps WHERE workflow_id = $1", workflow_id)
            await conn.execute(
                "DELETE FROM steps WHERE workflow_id = $1 AND position = ANY($2::text[])",
                workflow_id, forgotten(status, failed_at, [(p, ok) for p, ok in steps]))
            await conn.execute(
                "UPDATE workflows SET status = 'pending', error = NULL, result = NULL,"
                " cancel = false, owner = NULL, lease_until = 0, wake_at = NULL,"
                " not_before = NULL, finished_at = NULL, failed_at = NULL, updated_at = $1,"
                " recoveries = 0, run_id = $3, ready = true"
                " WHERE id = $2", time.time(), workflow_id, new_run_id())
            await self._notify(conn, "pending", workflow_id)
            return await self._select_one(conn, workflow_id)

        return await self._tx(f"resume workflow {workflow_id!r}", body)

    async def _select_one(self, conn: Any, workflow_id: str) -> WorkflowRecord:
        row = await conn.fetchrow(
            f"SELECT {WF_COLUMNS} FROM workflows WHERE id = $1", workflow_id)
        return _record(row)

    # -- reads -------------------------------------------------------------------------

    async def get_event(self, workflow_id: str, key: str) -> tuple[bool, bytes | None]:
        rows = await self._read(
            f"read event {key!r} of {workflow_id!r}",
            "SELECT value FROM events WHERE workflow_id = $1 AND key = $2", workflow_id, key)
        return (True, rows[0][0]) if rows else (False, None)

    async def children(self, workflow_id: str) -> list[str]:
        rows = await self._read(
            f"read the children of {workflow_id!r}",
            "SELECT id FROM workflows WHERE parent_id = $1 AND status <> ALL($2::text[])",
            workflow_id, list(_FINISHED))
        return [r[0] for r in rows]

    async def get(self, workflow_id: str) -> WorkflowRecord | None:
        rows = await self._read(
            f"read workflow {workflow_id!r}",
            f"SELECT {WF_COLUMNS} FROM workflows WHERE id = $1", workflow_id)
        return _record(rows[0]) if rows else None

    async def history(self, workflow_id: str, run_id: str | None = None) -> list[StepRecord]:
        await self._appends.barrier()  # read this process's own unawaited checkpoints
        if run_id is None:
            rows = await self._read(
                f"read the history of {workflow_id!r}",
                "SELECT position, kind, name, ok, value, created_at FROM steps"
                ' WHERE workflow_id = $1 ORDER BY position COLLATE "C"', workflow_id)
        else:
            rows = await self._read(
                f"read the history of {workflow_id!r}, run {run_id!r}",
                "SELECT position, kind, name, ok, value, created_at FROM previous_steps"
                ' WHERE workflow_id = $1 AND run_id = $2 ORDER BY position COLLATE "C"',
                workflow_id, run_id)
        return [StepRecord(*r) for r in rows]

    async def find(self, query: WorkflowQuery) -> list[WorkflowRecord]:
        sql, params = query_sql(query, WF_COLUMNS, lambda n: f"${n}")
        return [_record(r) for r in await self._read("find workflows", sql, *params)]

    async def events(self, workflow_id: str) -> list[EventRecord]:
        rows = await self._read(
            f"read the events of {workflow_id!r}",
            "SELECT key, value, updated_at FROM events WHERE workflow_id = $1"
            ' ORDER BY key COLLATE "C"',
            workflow_id)
        return [EventRecord(*r) for r in rows]

    async def list(
        self, *, status: str | None, name: str | None, limit: int
    ) -> list[WorkflowRecord]:
        rows = await self._read(
            "list workflows",
            f"SELECT {WF_COLUMNS} FROM workflows WHERE ($1::text IS NULL OR status = $1)"
            " AND ($2::text IS NULL OR name = $2) ORDER BY created_at DESC LIMIT $3",
            status, name, limit)
        return [_record(r) for r in rows]

    # -- streams and updates (see _postgres_streams, _postgres_updates) ----------------

    async def write_stream(self, workflow_id: str, owner: str, key: str, origin: str,
                           value: bytes | None, step: StepRecord | None = None) -> str:
        fits = len(workflow_id.encode()) < _ID_KEPT
        args = streams.write_args(self.ends_channel, f"event {workflow_id}" if fits else "event",
                                  workflow_id, owner, key, origin, value, step)
        rows = await self._write(f"write stream {key!r} of {workflow_id!r}",
                                 streams.WRITE_SQL, *args)
        return streams.outcome(rows[0], value)

    async def read_stream(self, workflow_id: str, key: str, offset: int, limit: int
                          ) -> streams.Rows:
        rows = await self._read(f"read stream {key!r} of {workflow_id!r}", streams.READ_SQL,
                                workflow_id, key, offset, limit)
        return [(row[0], row[1]) for row in rows]

    async def send_update(self, workflow_id: str, update_id: str, name: str,
                          payload: bytes) -> None:
        await self._tx(
            f"send update {name!r} to {workflow_id!r}",
            lambda conn: updates.send(conn, self._notify, self._wake, workflow_id, update_id,
                                      name, payload))

    async def take_update(self, workflow_id: str, owner: str, name: str, step: StepRecord
                          ) -> tuple[str, bytes | None]:
        return await self._tx(
            f"take update {name!r} of {workflow_id!r}",
            lambda conn: updates.take(conn, self._insert_step, workflow_id, owner, name, step))

    async def reply_update(self, workflow_id: str, owner: str, update_id: str, reply: bytes,
                           step: StepRecord) -> bool:
        return await self._tx(
            f"reply to update {update_id!r} of {workflow_id!r}",
            lambda conn: updates.reply(conn, self._notify, self._insert_step, workflow_id,
                                       owner, update_id, reply, step))

    async def update_reply(self, workflow_id: str, update_id: str
                           ) -> tuple[bool, bytes | None]:
        rows = await self._read(f"read the reply to update {update_id!r}", updates.REPLY_SQL,
                                workflow_id, update_id)
        return (bool(rows[0][0]), rows[0][1]) if rows else (False, None)
