"""Keeping the write-ahead log of a shared SQLite file bounded.

SQLite's automatic checkpoint (PASSIVE, every 1,000 pages) copies the WAL
into the database but can start the WAL over only at a moment when no
connection of any process is reading from it. With two busy processes on one
file that moment never comes, and the WAL grows without bound (706 MB beside
a 374 MB database in 14 s, issue 13). The automatic checkpoint stays on:
in one process it keeps the WAL near 4 MB at little cost (turning it off
and truncating at 16 MB cost 18 % of concurrent throughput). But when the
WAL passes
:data:`WAL_LIMIT`, a checkpoint in TRUNCATE mode runs on a connection and a
thread of its own: it waits (briefly, :data:`_WAIT_MS`) for the readers of
old snapshots to finish, copies the rest, and empties the file. While it
runs, other writers wait for the lock (the group committer hands its
commits to its thread, which waits up to 30 s); readers go on.
``journal_size_limit`` trims a WAL that was restarted but not truncated.

The size is looked at after a commit, at most every :data:`CHECK_EVERY` s
(a ``stat`` costs ~1.5 µs, 5% of a sequential step).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

__all__ = ["CHECK_EVERY", "WAL_LIMIT", "WalKeeper"]

WAL_LIMIT = 16 * 2**20  # bytes of WAL above which a checkpoint empties it
CHECK_EVERY = 0.01  # seconds between looks at the WAL's size, at most
_BACKOFF_MAX = 1.0  # seconds between tries while readers keep the WAL busy
_TRY_MS = 20  # a checkpoint blocks writers while it waits for readers: not long


class WalKeeper:
    """Checkpoints the WAL of the database at ``path`` when it grows past the limit."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._wal = Path(f"{path}-wal")
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="legato-sqlite-checkpoint")
        self._conn: sqlite3.Connection | None = None  # made and used in the thread only
        self._running: Future[None] | None = None
        self._next = time.monotonic() + CHECK_EVERY
        self._wait = CHECK_EVERY  # grows while checkpoints fail (a long reader)

    def after_commit(self) -> None:
        """Start a checkpoint if the WAL is over the limit (looked at now and then)."""
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self._wait
        if self._running is not None and not self._running.done():
            return
        try:
            over = os.stat(self._wal).st_size > WAL_LIMIT
        except OSError:
            return  # no WAL yet, or gone: a commit reports what matters
        if over:
            self._running = self._thread.submit(self._checkpoint)

    def close(self) -> None:
        self._thread.shutdown(wait=True)
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _checkpoint(self) -> None:
        # Best effort: a checkpoint that fails, or finds the lock or old readers
        # busy, is tried again later, less and less often (a long read, a backup,
        # must not have writers stalled every 10 ms); commits report the file's
        # own failures.
        busy, log = 1, 0
        with contextlib.suppress(sqlite3.Error):
            conn = self._conn or self._connect()
            ((busy, log, _),) = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        # log == -1: another connection was checkpointing; it empties the WAL
        ok = not busy or log == -1
        self._wait = CHECK_EVERY if ok else min(_BACKOFF_MAX, self._wait * 2)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {_TRY_MS}")
        conn.execute(f"PRAGMA journal_size_limit = {WAL_LIMIT}")
        self._conn = conn
        return conn
