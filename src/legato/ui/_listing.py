"""The executions list's filters and paging, read from (and written back to) the URL."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import legato

__all__ = ["WINDOWS", "BadFilter", "ListQuery"]

#: The "created within" choices: their label and length.
WINDOWS: dict[str, timedelta] = {
    "15m": timedelta(minutes=15), "1h": timedelta(hours=1), "24h": timedelta(days=1),
    "7d": timedelta(days=7),
}
_STATUSES = frozenset(s.value for s in legato.Status)


class BadFilter(ValueError):
    """A filter in the URL that means nothing; the message says which and why."""


@dataclass(frozen=True, slots=True)
class ListQuery:
    """What the list shows: filters and the page (0 is the newest executions).

    Example::

        q = ListQuery.parse({"status": "failed", "window": "24h", "page": "2"})
        await rt.list(**q.list_args(page_size=50, now=datetime.now(UTC)))
    """

    status: str | None = None
    name: str | None = None
    queue: str | None = None
    window: str | None = None  # a key of WINDOWS
    since: datetime | None = None
    until: datetime | None = None
    page: int = 0

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> ListQuery:
        """The query in a URL's parameters; empty ones are ignored.

        Times are ISO 8601 (``2025-01-02T03:04``, as a browser's date-time
        field sends them); without a zone they are UTC, as the pages show times.

        Raises:
            BadFilter: a status, window, time or page that doesn't parse.
        """
        get = {k: v.strip() for k, v in params.items() if v.strip()}
        status = get.get("status")
        if status is not None and status not in _STATUSES:
            raise BadFilter(f"unknown status {status!r}: use one of {', '.join(sorted(_STATUSES))}")
        window = get.get("window")
        if window is not None and window not in WINDOWS:
            raise BadFilter(f"unknown window {window!r}: use one of {', '.join(WINDOWS)}")
        try:
            page = int(get.get("page", "0"))
        except ValueError:
            raise BadFilter(f"page must be a whole number, not {get['page']!r}") from None
        if page < 0:
            raise BadFilter(f"page can't be negative ({page})")
        return cls(status=status, name=get.get("name"), queue=get.get("queue"), window=window,
                   since=_time("since", get.get("since")),
                   until=_time("until", get.get("until")), page=page)

    def list_args(self, page_size: int, now: datetime) -> dict[str, Any]:
        """The keyword arguments of ``rt.list`` for this page, plus one row to see a next page."""
        since = self.since
        if self.window is not None:
            start = now - WINDOWS[self.window]
            since = start if since is None else max(since, start)
        return {"status": self.status, "name": self.name, "queue": self.queue, "since": since,
                "until": self.until, "limit": page_size + 1, "offset": self.page * page_size}

    def url(self, **changes: Any) -> str:
        """This query as a URL's query string (``?status=failed&page=2``), with ``changes``."""
        q = replace(self, **changes)
        pairs = {"status": q.status, "name": q.name, "queue": q.queue, "window": q.window,
                 "since": _iso(q.since), "until": _iso(q.until),
                 "page": str(q.page) if q.page else None}
        text = urlencode({k: v for k, v in pairs.items() if v})
        return f"?{text}" if text else "?"

    @property
    def filtered(self) -> bool:
        """Whether any filter is set."""
        return any((self.status, self.name, self.queue, self.window, self.since, self.until))

    def field(self, name: str) -> str:
        """A filter's value as its form field shows it."""
        value = getattr(self, name)
        if isinstance(value, datetime):
            return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
        return "" if value is None else str(value)


def _time(name: str, text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise BadFilter(f"{name} must be a time like 2025-01-02T03:04, not {text!r}") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
