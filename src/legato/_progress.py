"""Progress: a workflow publishes ``"progress"``, and the CLI and the dashboard draw a bar.

A workflow reports progress with :func:`progress` (an event named ``"progress"``)::

    await legato.progress(3, 10, "fetching")
    # is: await legato.set_event("progress", {"done": 3, "total": 10, "message": "fetching"})

``done`` and ``total`` are numbers (``total`` > 0); ``message`` is optional.
A bare number between 0 and 1 is read as a fraction. Anything else under
that key is shown as it is, without a bar.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from .durable import set_event

__all__ = ["EVENT", "Progress", "progress", "read_progress"]

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

    @classmethod
    def read(cls, value: Any) -> Progress | None:
        """The progress in a ``"progress"`` event's value, or ``None`` if it isn't one.

        >>> legato.Progress.read({"done": 3, "total": 10}).percent
        30.0
        >>> legato.Progress.read("almost") is None
        True
        """
        return read_progress(value)

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


async def progress(done: float, total: float, message: str | None = None) -> None:
    """Publish how far the workflow is: ``done`` of ``total``, and what it is doing.

    ``legato show`` and ``legato tail`` draw it as a bar, and so does the
    dashboard. It is ``legato.set_event("progress", {"done": done, "total":
    total, "message": message})``: recorded like any event (a replay does not
    publish again), and a later call replaces the value. Callers read it with
    ``handle.get_event("progress")``; :meth:`Progress.read` parses it.

    Example::

        @legato.workflow
        async def crawl(urls: list[str]) -> None:
            for i, url in enumerate(urls):
                await fetch(url)
                await legato.progress(i + 1, len(urls), f"fetched {url}")

    Raises:
        ValueError: ``done`` or ``total`` is not a finite number, or ``total`` is not > 0.
        LegatoError: called outside a workflow (as ``set_event``).
    """
    if not (_is_number(done) and _is_number(total) and total > 0):
        raise ValueError(f"legato.progress needs finite numbers done and total > 0, not "
                         f"done={done!r}, total={total!r}")
    value: dict[str, Any] = {"done": done, "total": total}
    if message is not None:
        value["message"] = str(message)
    await set_event(EVENT, value)


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
