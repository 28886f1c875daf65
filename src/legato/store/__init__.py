"""Stores: where workflows and their checkpoints live."""

from __future__ import annotations

from ._protocol import NewWorkflow, StepRecord, Store, WorkflowRecord
from ._sqlite import SqliteStore

__all__ = ["NewWorkflow", "SqliteStore", "StepRecord", "Store", "WorkflowRecord", "open_store"]


def open_store(url: str | Store) -> Store:
    """The store a URL names: a path or ``sqlite:///...`` (SQLite), ``postgresql://...``.

    >>> open_store("legato.db")
    SqliteStore('legato.db')
    """
    if not isinstance(url, str):
        return url
    if url.startswith(("postgresql:", "postgres:")):
        raise ValueError(
            f"PostgreSQL stores are not available in this release ({url!r}); "
            "use a SQLite file such as 'legato.db' for now"
        )
    if "://" in url and not url.startswith("sqlite:"):
        scheme = url.split("://", 1)[0]
        raise ValueError(
            f"unknown store scheme {scheme!r} in {url!r}; use a file path, "
            "'sqlite:///path.db' or 'postgresql://...'"
        )
    return SqliteStore(url)
