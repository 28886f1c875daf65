"""Points in time as the terminal spells them: ISO times, epoch seconds, or ages."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

__all__ = ["parse_age", "parse_when"]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_age(text: str) -> float:
    """Seconds in an age such as ``90s``, ``1h30m`` or ``2d``.

    >>> parse_age("1h30m")
    5400.0
    """
    compact = text.replace(" ", "")
    parts = _PART.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f"{text!r} is not an age like 90s, 10m, 1h30m or 2d")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def parse_when(text: str | None, now: float | None = None) -> datetime | None:
    """A time from an ISO 8601 string, epoch seconds, or an age (that long before ``now``).

    An ISO time without a zone is local time, as Python reads it.

    >>> parse_when("2025-01-02T03:04:05+00:00")
    datetime.datetime(2025, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    >>> parse_when("1h", now=7200.0)
    datetime.datetime(1970, 1, 1, 1, 0, tzinfo=datetime.timezone.utc)
    """
    if text is None:
        return None
    try:
        return datetime.fromtimestamp(float(text), UTC)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    try:
        age = parse_age(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: give an ISO time (2025-01-02T03:04), epoch seconds, "
            "or an age like 10m or 1h30m") from None
    return datetime.fromtimestamp((time.time() if now is None else now) - age, UTC)
