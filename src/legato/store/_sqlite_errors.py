"""SQLite's errors as legato's: what failed, in which file, and what to do about it.

Every driver error that leaves the SQLite store (``sqlite3.Error``, or an
``OSError`` from reaching the file) becomes a :class:`~legato.StoreError`
whose message names the action, the file and the fix, with the driver's
error as ``__cause__``. The fix is chosen by SQLite's primary result code.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from os import PathLike

from .._errors import LegatoError, StoreError

__all__ = ["store_error", "translated"]

_FIXES = {
    "SQLITE_FULL": (
        "the disk (or the database's max_page_count) is full; nothing of this write was "
        "committed. Free disk space, then retry"),
    "SQLITE_CORRUPT": (
        "the file is damaged. Stop every process using it, then restore it from a backup "
        "(or salvage what is left with: sqlite3 {path} .recover)"),
    "SQLITE_NOTADB": (
        "the file is not a SQLite database, or its first page is damaged. Check the path; "
        "restore the file from a backup if it is legato's"),
    "SQLITE_IOERR": (
        "the disk failed to read or write. Check the disk, and that the file and its -wal "
        "and -shm files are still there"),
    "SQLITE_READONLY": (
        "the file, or its directory (SQLite writes -wal and -shm files beside it), is "
        "read-only to this process. Fix the permissions"),
    "SQLITE_CANTOPEN": (
        "SQLite can't open the file. Check that its directory exists and this process may "
        "write to it"),
    "SQLITE_BUSY": (
        "another process held the database's write lock for over 30 s. Find what holds it "
        "(a long transaction, a stopped process) and retry"),
    "SQLITE_LOCKED": (
        "another connection held the database's write lock for over 30 s. Find what holds "
        "it (a long transaction, a stopped process) and retry"),
}


def store_error(exc: BaseException, action: str, path: str | PathLike[str]) -> BaseException:
    """``exc`` as a :class:`StoreError` if it is a driver's error; else ``exc`` itself.

    >>> store_error(sqlite3.OperationalError("database or disk is full"), "commit", "x.db")
    StoreError('SQLite failed to commit in x.db (database or disk is full)')
    """
    if isinstance(exc, LegatoError) or not isinstance(exc, sqlite3.Error | OSError):
        return exc
    what = f"SQLite failed to {action} in {path} ({exc})"
    fix = _fix(exc)
    error = StoreError(f"{what}: {fix.format(path=path)}" if fix else what)
    error.__cause__ = exc
    return error


@contextmanager
def translated(action: str, path: str | PathLike[str]) -> Iterator[None]:
    """Re-raise driver errors as :class:`StoreError` naming ``action`` and ``path``.

    >>> with translated("read workflow 'x'", "legato.db"): ...
    """
    try:
        yield
    except (sqlite3.Error, OSError) as exc:
        raise store_error(exc, action, path) from exc


def _fix(exc: sqlite3.Error | OSError) -> str:
    name = getattr(exc, "sqlite_errorname", None)
    if not isinstance(name, str):
        return ""
    # Extended codes (SQLITE_IOERR_WRITE, SQLITE_BUSY_SNAPSHOT) share their primary's fix.
    primary = "_".join(name.split("_")[:2])
    return _FIXES.get(primary, "")
