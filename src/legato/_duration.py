"""Durations: seconds, ``timedelta`` or strings like ``"1h30m"``."""

from __future__ import annotations

import functools
import re
from datetime import timedelta

__all__ = ["Duration", "to_seconds"]

Duration = float | int | timedelta | str

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def to_seconds(duration: Duration) -> float:
    """Return ``duration`` in seconds.

    Accepts a number of seconds, a ``timedelta``, or a string made of
    ``<number><unit>`` parts with units ``ms s m h d w``.

    >>> to_seconds("1h30m"), to_seconds(2), to_seconds(timedelta(minutes=1))
    (5400.0, 2.0, 60.0)

    Raises:
        ValueError: for a string that isn't a duration, or a negative duration.
        TypeError: for any other type.
    """
    if isinstance(duration, bool):
        raise TypeError(f"a duration can't be a bool ({duration!r}); pass seconds, e.g. 1.5")
    if isinstance(duration, int | float):
        seconds = float(duration)
    elif isinstance(duration, timedelta):
        seconds = duration.total_seconds()
    elif isinstance(duration, str):
        seconds = _parse(duration)
    else:
        raise TypeError(
            f"a duration must be seconds, a timedelta or a string like '1h30m', "
            f"not {type(duration).__name__}"
        )
    if seconds < 0 or seconds != seconds:
        raise ValueError(f"a duration must be zero or more seconds, not {duration!r}")
    return seconds


@functools.lru_cache(maxsize=256)  # the same few literals ("1h") on every durable wait
def _parse(text: str) -> float:
    compact = text.replace(" ", "").lower()
    parts = _PART.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise ValueError(
            f"{text!r} is not a duration; write it like '90s', '1h30m', '2d' or '250ms' "
            "(units: ms, s, m, h, d, w)"
        )
    return sum(float(n) * _UNITS[u] for n, u in parts)
