"""The progress convention: a workflow publishes ``"progress"`` and the dashboard draws a bar.

A workflow reports progress with an event named ``"progress"``::

    await legato.set_event("progress", {"done": 3, "total": 10, "message": "fetching"})

``done`` and ``total`` are numbers (``total`` > 0); ``message`` is optional.
A bare number between 0 and 1 is read as a fraction. Anything else under
that key is shown as it is, without a bar.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

__all__ = ["EVENT", "Progress", "read_progress"]

EVENT = "progress"


@dataclass(frozen=True, slots=True)
class Progress:
    """How far a workflow says it is: ``done`` of ``total``, and what it is doing.

    >>> Progress(3, 10, "fetching").text
    '3/10 fetching'
    """

    done: float
    total: float
    message: str = ""

    @property
    def percent(self) -> float:
        """``done / total`` in percent, between 0 and 100."""
        return max(0.0, min(100.0, 100 * self.done / self.total))

    @property
    def text(self) -> str:
        """``"3/10 fetching"`` (or ``"30%"`` for a fraction)."""
        count = (f"{self.percent:.0f}%" if self.total == 1 and self.done <= 1
                 else f"{_number(self.done)}/{_number(self.total)}")
        return f"{count} {self.message}".strip()


def read_progress(value: Any) -> Progress | None:
    """The :class:`Progress` in a ``"progress"`` event's value, or ``None`` if it isn't one.

    >>> read_progress({"done": 3, "total": 10, "message": "fetching"}).percent
    30.0
    >>> read_progress(0.5).text
    '50%'
    >>> read_progress("almost") is None
    True
    """
    if _is_number(value) and 0 <= value <= 1:
        return Progress(float(value), 1.0)
    if not isinstance(value, Mapping):
        return None
    done, total = value.get("done"), value.get("total")
    if not (_is_number(done) and _is_number(total) and total > 0):
        return None
    message = value.get("message")
    return Progress(float(done), float(total), "" if message is None else str(message))


def _is_number(value: Any) -> TypeGuard[int | float]:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))


def _number(value: float) -> str:
    return f"{value:.0f}" if value == int(value) else f"{value:g}"
