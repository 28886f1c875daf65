"""Opening a SQLite file: URL options and connection pragmas."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from ._sqlite_wal import WAL_LIMIT

__all__ = ["connect", "parse_sqlite_url"]

_SYNC_MODES = {"normal": "NORMAL", "full": "FULL", "off": "OFF", "extra": "EXTRA"}


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


def connect(path: Path, sync: str) -> sqlite3.Connection:
    """A connection in WAL mode with synchronous mode ``sync``, waiting up to 30 s for locks."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 30000")
    _set_wal(conn)
    conn.execute(f"PRAGMA synchronous = {sync}")
    # SQLite's automatic checkpoint stays: cheap, and enough for one process.
    # WalKeeper is the backstop for when several keep the WAL from restarting.
    conn.execute(f"PRAGMA journal_size_limit = {WAL_LIMIT}")
    return conn


def _set_wal(conn: sqlite3.Connection, wait: float = 30.0) -> None:
    # Switching a new file to WAL fails at once with "locked" (no busy handler)
    # while another process does the same: two workers started together on a
    # fresh file. Retry; once the file is WAL the switch is a no-op.
    deadline = time.monotonic() + wait
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if not ("locked" in str(exc) or "busy" in str(exc)) or time.monotonic() > deadline:
                conn.close()
                raise
            time.sleep(0.01)
