"""Stores: where workflows and their checkpoints live."""

from __future__ import annotations

import os

from ._inspection import EventRecord, WorkflowQuery
from ._protocol import (
    INFER,
    PRIORITY_MAX,
    PRIORITY_MIN,
    Claimed,
    ClaimRequest,
    Claims,
    Infer,
    Inspection,
    Journal,
    Lease,
    Mailbox,
    News,
    NewWorkflow,
    QueueLimits,
    Renewal,
    Renewer,
    ScheduleRecord,
    Schedules,
    ScheduleState,
    StepRecord,
    Store,
    Streams,
    Updates,
    WorkerRecord,
    WorkflowRecord,
    check_priority,
    owner_worker,
)
from ._sqlite import SqliteStore

__all__ = [
    "ClaimRequest", "Claimed", "Claims", "Inspection", "Journal", "Mailbox", "News",
    "INFER", "PRIORITY_MAX", "PRIORITY_MIN", "EventRecord", "Infer", "Lease", "NewWorkflow",
    "QueueLimits", "Renewal", "Renewer", "ScheduleRecord", "ScheduleState", "Schedules",
    "SqliteStore", "StepRecord", "Store", "Streams", "Updates", "WorkflowQuery",
    "WorkerRecord", "WorkflowRecord",
    "check_priority", "open_store", "owner_worker",
]


def open_store(url: str | os.PathLike[str] | Store) -> Store:
    """The store a URL names: a path or ``sqlite:///...`` (SQLite), ``postgresql://...``.

    A PostgreSQL URL may end in ``?schema=name`` (default ``legato``): the
    PostgreSQL schema that holds legato's tables.

    >>> open_store("legato.db")
    SqliteStore('legato.db')
    """
    if isinstance(url, os.PathLike):
        url = os.fspath(url)
    if not isinstance(url, str):
        return url
    if url.startswith(("postgresql:", "postgres:")):
        try:
            from ._postgres import PostgresStore
        except ImportError as exc:
            raise ImportError(
                "a postgresql:// store needs the PostgreSQL driver asyncpg; "
                "install it with: pip install 'legato[postgres]'"
            ) from exc
        return PostgresStore(url)
    if "://" in url and not url.startswith("sqlite:"):
        scheme = url.split("://", 1)[0]
        raise ValueError(
            f"unknown store scheme {scheme!r} in {url!r}; use a file path, "
            "'sqlite:///path.db' or 'postgresql://...'"
        )
    return SqliteStore(url)
