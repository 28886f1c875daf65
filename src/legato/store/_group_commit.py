"""Group commit for one SQLite writer connection.

Every write made during one event-loop turn goes into one transaction. The
commit runs inline on the loop when that is cheap (WAL with
``synchronous=NORMAL`` does no fsync per commit: ~20-50 µs), and in the
writer thread when it would block the loop: ``synchronous=FULL`` (an fsync
per commit), or another process holding the write lock. Measured in
DESIGN.md: inline costs 1.1-1.5x a raw commit per sequential step, the thread
hand-off ~5x; this keeps the fast path and pays for the thread only when a
commit would stall every workflow on the loop.

Every future handed out is settled, whatever fails: with the op's result,
or with the error as a :class:`~legato.StoreError` naming the op's action
(see ``_sqlite_errors``). A waiter left pending would hang its workflow.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .._errors import StoreError
from ._sqlite_errors import store_error
from ._sqlite_file import FileWatch
from ._sqlite_wal import WalKeeper

__all__ = ["GroupCommitter", "Op"]

Op = Callable[[sqlite3.Connection], Any]
_Write = tuple[Op, str, "asyncio.Future[Any]"]  # the op, what it does (for errors), its waiter

_LOCK_WAIT_MS = 30_000
# Writes one inline transaction takes at most: ~2 ms of the loop (15 µs a write).
# A burst (1,000 workflows started or woken at once) is committed over several
# loop turns, other tasks running between them, instead of stalling the loop
# for 15-90 ms in one; each commit costs ~30 µs more, 1-2 %.
INLINE_MAX = 128


class GroupCommitter:
    """Runs submitted operations in shared transactions, in submission order."""

    def __init__(self, conn: sqlite3.Connection, watch: FileWatch, wal: WalKeeper, *,
                 inline: bool) -> None:
        self._conn = conn
        self._watch = watch
        self._wal = wal
        self._inline = inline
        self._writes: list[_Write] = []
        self._in_thread: list[_Write] = []  # the batch the writer thread is committing
        self._scheduled = False
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="legato-sqlite-writer")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wait_ms: int | None = None  # the connection's busy_timeout

    def submit(self, op: Op, action: str) -> asyncio.Future[Any]:
        """Queue ``op`` for the next transaction; the future resolves after COMMIT.

        ``action`` ("record a checkpoint") names the op in a failure's message.
        """
        loop = self._loop or self._bind()
        fut: asyncio.Future[Any] = loop.create_future()
        self._writes.append((op, action, fut))
        if not self._scheduled and not self._in_thread:
            self._scheduled = True
            loop.call_soon(self._flush)
        return fut

    def idle(self) -> bool:
        """Whether the connection is free for a read on the loop: it commits inline, and
        no commit is under way in the writer thread."""
        return self._inline and not self._in_thread

    def quiet(self) -> bool:
        """Idle (see :meth:`idle`), with no write waiting: a read now sees every write made."""
        return self.idle() and not self._writes

    async def drain(self) -> None:
        """Wait until everything submitted so far is committed (or failed)."""
        while self._writes or self._in_thread or self._scheduled:
            waiters = [fut for *_, fut in self._in_thread + self._writes]
            if waiters:
                await asyncio.wait(waiters)  # never cancels a writer's future
            else:
                await asyncio.sleep(0)

    def close(self) -> None:
        self._thread.shutdown(wait=True)

    def _bind(self) -> asyncio.AbstractEventLoop:
        self._loop = asyncio.get_running_loop()
        return self._loop

    def _take(self, most: int | None) -> list[_Write]:
        """The oldest ``most`` writes (all: ``None``), in order, less the cancelled ones."""
        # A write whose caller was cancelled before it ran is not made: the
        # caller has moved on (e.g. a losing wait_for_signal must not consume).
        taken = self._writes if most is None else self._writes[:most]
        self._writes = [] if most is None else self._writes[most:]
        return [w for w in taken if not w[2].cancelled()]

    def _flush(self) -> None:
        self._scheduled = False
        if self._in_thread:  # the thread's batch first; its end flushes the rest
            return
        writes = self._take(INLINE_MAX if self._inline else None)
        if self._inline and writes:
            try:
                results = self._commit([op for op, _, _ in writes], 0)
            except BaseException as exc:
                if not _is_locked(exc):
                    _fail(writes, exc, self._watch)
                    self._again()
                    if not isinstance(exc, Exception):
                        raise
                    return
            else:
                _resolve(writes, results, self._watch)
                self._wal.after_commit()
                self._again()
                return
        if writes:
            self._hand_off(writes)
        else:
            self._again()

    def _again(self) -> None:
        """Writes are left (more than one inline commit takes): flush them next turn."""
        if self._writes and not self._scheduled and not self._in_thread:
            self._scheduled = True
            assert self._loop is not None
            self._loop.call_soon(self._flush)

    def _hand_off(self, writes: list[_Write]) -> None:
        """Commit ``writes`` in the writer thread, which may wait for the lock."""
        assert self._loop is not None
        try:
            task = self._thread.submit(self._commit, [op for op, _, _ in writes], _LOCK_WAIT_MS)
        except RuntimeError as exc:  # shut down: a write submitted after close
            _fail(writes, StoreError(
                f"the SQLite store on {self._watch.path} is closed; nothing was written. "
                "Write inside 'async with Runtime(...)'"), self._watch, cause=exc)
            self._again()
            return
        self._in_thread = writes
        asyncio.wrap_future(task, loop=self._loop).add_done_callback(self._after_thread)

    def _commit(self, ops: list[Op], wait_ms: int) -> list[Any]:
        self._watch.check()
        # Inline: never wait for another process's lock (the thread will); set
        # only on a change, as the pragma costs ~2.5 µs, a tenth of a step.
        if self._wait_ms != wait_ms:
            self._conn.execute(f"PRAGMA busy_timeout = {wait_ms}")
            self._wait_ms = wait_ms
        return _transaction(self._conn, ops)

    def _after_thread(self, done: asyncio.Future[list[Any]]) -> None:
        writes, self._in_thread = self._in_thread, []
        try:
            if done.cancelled():  # the loop is closing under us
                _fail(writes, StoreError(
                    f"the commit to {self._watch.path} was cancelled (the event loop is "
                    "closing); it may or may not have been made"), self._watch)
            elif (exc := done.exception()) is not None:
                _fail(writes, exc, self._watch)
            else:
                _resolve(writes, done.result(), self._watch)
                self._wal.after_commit()
        finally:
            if self._writes and not self._scheduled:
                self._scheduled = True
                assert self._loop is not None
                self._loop.call_soon(self._flush)


def _transaction(conn: sqlite3.Connection, ops: list[Op]) -> list[Any]:
    """Run ``ops`` in one IMMEDIATE transaction; per-op errors don't sink the batch.

    An op raises before it writes (it checks first), or its failing statement
    is undone by SQLite on its own; the others commit. Each op's result (or
    exception) is returned in order. An error of the file or the connection
    (full, locked, I/O, corrupt) fails the whole batch, rolled back.
    """
    conn.execute("BEGIN IMMEDIATE")
    results: list[Any] = []
    try:
        for op in ops:
            try:
                results.append(op(conn))
            except Exception as exc:
                if _sinks_the_batch(exc):
                    raise
                results.append(exc)
        conn.execute("COMMIT")
    except BaseException:
        # SQLite may have rolled back already (a full disk, an I/O error); a
        # ROLLBACK that fails too must not hide the error that matters.
        with contextlib.suppress(sqlite3.Error):
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        raise
    return results


def _sinks_the_batch(exc: Exception) -> bool:
    # The op's own faults (a constraint, a bad value) are the op's alone.
    return isinstance(exc, sqlite3.DatabaseError) and not isinstance(
        exc, sqlite3.IntegrityError | sqlite3.DataError | sqlite3.ProgrammingError)


def _is_locked(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and (
        "locked" in str(exc) or "busy" in str(exc))


def _resolve(writes: list[_Write], results: list[Any], watch: FileWatch) -> None:
    for (_, action, fut), result in zip(writes, results, strict=True):
        if fut.done():
            continue
        if isinstance(result, BaseException):
            fut.set_exception(store_error(result, action, watch.path))
        else:
            fut.set_result(result)


def _fail(writes: list[_Write], exc: BaseException, watch: FileWatch,
          cause: BaseException | None = None) -> None:
    for _, action, fut in writes:
        if not fut.done():
            error = store_error(exc, action, watch.path)
            if cause is not None:
                error.__cause__ = cause
            fut.set_exception(error)
