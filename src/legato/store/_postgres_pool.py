"""PostgreSQL connections: asyncpg's pool, and one connection held for the hot path.

Taking a connection from asyncpg's pool and giving it back costs about 70 µs
of Python (a point SELECT: 100 µs on a held connection, 170 µs through
``pool.fetch``, measured here), as much as a durable step's own statement on
a fast server. So one connection is taken from the pool when the store opens
and kept: a call of one statement (or a few, outside a transaction) uses it
when it is free, and a pooled one otherwise, so concurrent calls still run
side by side. Transactions always take a pooled connection.

A call that ends on the held connection in a way that may leave it mid-way
(cancelled, connection lost, a transaction left open) gives it back to the
pool, which waits for the cancellation and cleans it up, and another is
taken, in the background. The pool resets nothing on release (see
:func:`keep_session`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import AsyncIterator
from typing import Any

import asyncpg

__all__ = ["Connections", "keep_session"]


async def keep_session(conn: Any) -> None:
    """What the pool does to a connection given back, beyond asyncpg's own clean-up: nothing.

    asyncpg rolls back an open transaction and drops listeners on release
    anyway; its default reset also sends ``pg_advisory_unlock_all(); CLOSE ALL;
    UNLISTEN *; RESET ALL`` — four statements per release, more than a durable
    step sends. None of them has anything to undo here: pooled connections
    take only transaction-level advisory locks, open no cursor outside a
    transaction, never LISTEN (news has a connection of its own) and ``SET``
    only ``LOCAL``ly; nothing else ever gets a pooled connection.
    """


class Connections:
    """The store's pool and its held connection (see the module's docstring)."""

    def __init__(self, pool: Any, *, hold: bool) -> None:
        self.pool = pool
        self._hold = hold  # a pool of one can't spare its connection
        self._held: Any = None
        self._busy = False
        self._taking: asyncio.Task[None] | None = None
        self._background_tasks: set[asyncio.Task[None]] = set()
        self._closing = False

    async def open(self) -> None:
        if self._hold:
            self._held = await self.pool.acquire()

    async def close(self) -> None:
        self._closing = True
        if self._background_tasks:
            await asyncio.wait(self._background_tasks)
        held, self._held = self._held, None
        if held is not None:
            await self.pool.release(held)
        await self.pool.close()

    @contextlib.asynccontextmanager
    async def one(self) -> AsyncIterator[Any]:
        """A connection for a call outside a transaction: the held one if it is free."""
        held = self._held
        if held is not None and not self._busy and _gone(held):  # the server went away
            self._held = None
            self._take(given_back=held)
            held = None
        if held is None or self._busy:
            if held is None:
                self._take()
            async with self.pool.acquire() as conn:
                yield conn
            return
        self._busy = True
        try:
            yield held
        except BaseException as exc:
            if _clean_after(held, exc):
                self._busy = False
            else:
                self._held, self._busy = None, False
                self._take(given_back=held)
            raise
        self._busy = False

    def _take(self, given_back: Any = None) -> None:
        """In the background: give ``given_back`` to the pool, hold another."""
        if not self._hold or self._closing or (
                self._taking is not None and not self._taking.done()):
            if given_back is not None:
                self._background(self._give_back(given_back))
            return
        self._taking = self._background(self._swap(given_back))

    async def _give_back(self, conn: Any) -> None:
        # a lost connection's holder went back to the pool by itself: nothing to give
        with contextlib.suppress(Exception):
            await self.pool.release(conn)

    async def _swap(self, given_back: Any) -> None:
        if given_back is not None:
            await self._give_back(given_back)
        with contextlib.suppress(Exception):  # the pool serves every call meanwhile
            if not self._closing:
                conn = await self.pool.acquire()
                if self._closing or self._held is not None:
                    await self.pool.release(conn)
                else:
                    self._held = conn

    def _background(self, coro: Any) -> asyncio.Task[None]:
        # In a context of its own: a task made in a workflow's context would be
        # taken for one of its branches and shift its positions.
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(
            coro, context=contextvars.Context())
        self._background_tasks.add(task)
        task.add_done_callback(self._background_tasks.discard)
        return task


def _clean_after(conn: Any, exc: BaseException) -> bool:
    """Whether ``conn`` is fit for the next call after ``exc`` ended one."""
    return (isinstance(exc, asyncpg.PostgresError) and not _gone(conn)
            and not conn.is_in_transaction())


def _gone(conn: Any) -> bool:
    """Whether a pooled connection we hold is closed or lost.

    When asyncpg sees a connection lost, it puts the connection's holder back
    in the pool itself and detaches our proxy, whose every method then raises
    ``InterfaceError``, ``is_closed`` too.
    """
    try:
        return bool(conn.is_closed())
    except asyncpg.InterfaceError:
        return True
