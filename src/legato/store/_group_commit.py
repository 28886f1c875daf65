"""Group commit for one SQLite writer connection.

Every write made during one event-loop turn goes into one transaction. The
commit runs inline on the loop when that is cheap (WAL with
``synchronous=NORMAL`` does no fsync per commit: ~20-50 µs), and in the
writer thread when it would block the loop: ``synchronous=FULL`` (an fsync
per commit), or another process holding the write lock. Measured in
DESIGN.md: inline costs 1.1-1.5x a raw commit per sequential step, the thread
hand-off ~5x; this keeps the fast path and pays for the thread only when a
commit would stall every workflow on the loop.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

__all__ = ["GroupCommitter", "Op"]

Op = Callable[[sqlite3.Connection], Any]

_LOCK_WAIT_MS = 30_000


class GroupCommitter:
    """Runs submitted operations in shared transactions, in submission order."""

    def __init__(self, conn: sqlite3.Connection, *, inline: bool) -> None:
        self._conn = conn
        self._inline = inline
        self._ops: list[Op] = []
        self._futs: list[asyncio.Future[Any]] = []
        self._scheduled = False
        self._busy = False  # a batch is being committed in the thread
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="legato-sqlite-writer")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle: asyncio.Event | None = None
        self._wait_ms: int | None = None  # the connection's busy_timeout

    def submit(self, op: Op) -> asyncio.Future[Any]:
        """Queue ``op`` for the next transaction; the future resolves after COMMIT."""
        loop = self._loop or self._bind()
        fut: asyncio.Future[Any] = loop.create_future()
        self._ops.append(op)
        self._futs.append(fut)
        if not self._scheduled and not self._busy:
            self._scheduled = True
            loop.call_soon(self._flush)
        return fut

    async def drain(self) -> None:
        """Wait until everything submitted so far is committed."""
        while self._ops or self._busy or self._scheduled:
            if self._futs:
                await asyncio.gather(*self._futs, return_exceptions=True)
            else:
                await asyncio.sleep(0)

    def close(self) -> None:
        self._thread.shutdown(wait=True)

    def _bind(self) -> asyncio.AbstractEventLoop:
        self._loop = asyncio.get_running_loop()
        return self._loop

    def _take(self) -> tuple[list[Op], list[asyncio.Future[Any]]]:
        # A write whose caller was cancelled before it ran is not made: the
        # caller has moved on (e.g. a losing wait_for_signal must not consume).
        live = [(op, fut) for op, fut in zip(self._ops, self._futs, strict=True)
                if not fut.cancelled()]
        self._ops, self._futs = [], []
        return [op for op, _ in live], [fut for _, fut in live]

    def _flush(self) -> None:
        self._scheduled = False
        if not self._ops:
            return
        ops, futs = self._take()
        if not ops:
            return
        if self._inline:
            try:
                results = self._commit(ops, 0)
            except sqlite3.OperationalError as exc:
                if not _is_locked(exc):
                    _fail(futs, exc)
                    return
            else:
                _resolve(futs, results)
                return
        self._busy = True
        task = self._thread.submit(self._commit, ops, _LOCK_WAIT_MS)
        assert self._loop is not None
        asyncio.wrap_future(task, loop=self._loop).add_done_callback(
            lambda done: self._after_thread(done, futs)
        )

    def _commit(self, ops: list[Op], wait_ms: int) -> list[Any]:
        # Inline: never wait for another process's lock (the thread will); set
        # only on a change, as the pragma costs ~2.5 µs, a tenth of a step.
        if self._wait_ms != wait_ms:
            self._conn.execute(f"PRAGMA busy_timeout = {wait_ms}")
            self._wait_ms = wait_ms
        return _transaction(self._conn, ops)

    def _after_thread(
        self, done: asyncio.Future[list[Any]], futs: list[asyncio.Future[Any]]
    ) -> None:
        self._busy = False
        exc = done.exception()
        if exc is not None:
            _fail(futs, exc)
        else:
            _resolve(futs, done.result())
        if self._ops and not self._scheduled:
            self._scheduled = True
            assert self._loop is not None
            self._loop.call_soon(self._flush)


def _transaction(conn: sqlite3.Connection, ops: list[Op]) -> list[Any]:
    """Run ``ops`` in one IMMEDIATE transaction; per-op errors don't sink the batch.

    An op raises before it writes (it checks first), or its failing statement
    is undone by SQLite on its own; the others commit. Each op's result (or
    exception) is returned in order.
    """
    conn.execute("BEGIN IMMEDIATE")
    results: list[Any] = []
    try:
        for op in ops:
            try:
                results.append(op(conn))
            except sqlite3.OperationalError:
                raise  # locked, disk full, I/O: the whole batch fails
            except Exception as exc:
                results.append(exc)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return results


def _is_locked(exc: sqlite3.Error) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


def _resolve(futs: list[asyncio.Future[Any]], results: list[Any]) -> None:
    for fut, result in zip(futs, results, strict=True):
        if fut.done():
            continue
        if isinstance(result, BaseException):
            fut.set_exception(result)
        else:
            fut.set_result(result)


def _fail(futs: list[asyncio.Future[Any]], exc: BaseException) -> None:
    for fut in futs:
        if not fut.done():
            fut.set_exception(exc)
