"""What inspection asks of a store: a filtered, paged query over workflows.

Both stores build their SQL from one :class:`WorkflowQuery` through
:func:`where_sql`, so a filter means the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["EventRecord", "WorkflowQuery", "query_sql"]


@dataclass(frozen=True, slots=True)
class WorkflowQuery:
    """Which workflows :meth:`Store.find` returns; every filter is optional.

    ``since`` and ``until`` bound the creation time (epoch seconds, wall
    clock): ``since <= created_at < until``.

    Example::

        WorkflowQuery(status="failed", queue="emails", limit=20, newest_first=False)
    """

    status: str | None = None
    name: str | None = None
    queue: str | None = None
    parent: str | None = None
    since: float | None = None
    until: float | None = None
    limit: int = 100
    offset: int = 0
    newest_first: bool = True


@dataclass(frozen=True, slots=True)
class EventRecord:
    """The latest value a workflow published under ``key`` (``legato.set_event``)."""

    key: str
    value: bytes | None
    updated_at: float


def query_sql(query: WorkflowQuery, columns: str, mark: Callable[[int], str]
              ) -> tuple[str, list[Any]]:
    """The SELECT for ``query`` and its parameters; ``mark(n)`` spells the n-th placeholder.

    >>> query_sql(WorkflowQuery(status="failed", limit=5), "id", lambda n: "?")
    ('SELECT id FROM workflows WHERE status = ? ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?', ['failed', 5, 0])
    """  # noqa: E501
    where: list[str] = []
    params: list[Any] = []
    for column, op, value in (
        ("status", "=", query.status), ("name", "=", query.name), ("queue", "=", query.queue),
        ("parent_id", "=", query.parent), ("created_at", ">=", query.since),
        ("created_at", "<", query.until),
    ):
        if value is not None:
            params.append(value)
            where.append(f"{column} {op} {mark(len(params))}")
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    direction = "DESC" if query.newest_first else "ASC"
    params += [query.limit, query.offset]
    # id breaks ties between workflows created in the same instant: pages don't overlap
    return (f"SELECT {columns} FROM workflows{clause} ORDER BY created_at {direction},"
            f" id {direction} LIMIT {mark(len(params) - 1)} OFFSET {mark(len(params))}", params)
