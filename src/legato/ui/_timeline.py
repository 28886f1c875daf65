"""The execution page's Gantt chart: the step timeline as rows of bars on one time axis.

Rows are in the order ``legato show`` prints its tree: a position nests under
its prefix (``3.1.2`` under ``3.1`` under ``3``); a prefix without a
checkpoint of its own is a concurrent branch, and its bar spans its
contents. A retried step's failed attempts and the waits between them nest
under it. Bars are placed in percent of the chart's span, so the browser
draws them without any script.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import legato

__all__ = ["ROW_LIMIT", "Bar", "Chart", "chart"]

ROW_LIMIT = 2000  # checkpoints drawn at most
_MIN_WIDTH = 0.4  # percent: an instant (now, uuid4) still shows as a sliver
_INSTANT = frozenset({"now", "random", "uuid4", "event", "patched", "started"})
_WAITS = frozenset({"sleep", "signal", "child"})


@dataclass(frozen=True, slots=True)
class Bar:
    """One row of the chart: a checkpoint, a branch, or the workflow's current wait.

    ``left`` and ``width`` are percent of the chart's span; ``tone`` is the
    CSS class: ``ok``, ``failed``, ``attempt`` (a failed attempt of a retried
    step), ``wait`` (sleep, signal, child), ``branch``, ``instant`` or ``open``.
    """

    position: str
    depth: int
    label: str
    kind: str
    tone: str
    left: float
    width: float
    start: float  # seconds after the workflow's creation
    duration: float
    attempts: int = 1
    summary: str = ""


@dataclass(frozen=True, slots=True)
class Chart:
    """The rows, and the span they are drawn on (seconds from the workflow's creation)."""

    bars: tuple[Bar, ...]
    span: float
    hidden: int = 0  # checkpoints past the row limit, not drawn

    def ticks(self, count: int = 4) -> list[tuple[float, str]]:
        """``count + 1`` axis labels as (percent, text), from 0 to the span."""
        return [(100 * i / count, _seconds(self.span * i / count)) for i in range(count + 1)]


def chart(info: legato.WorkflowInfo, now: datetime, limit: int = ROW_LIMIT) -> Chart:
    """The Gantt rows of ``info``'s timeline, ending at its finish (or ``now`` if unfinished).

    At most ``limit`` checkpoints are drawn, the first in position order (a
    browser stays quick); :attr:`Chart.hidden` counts the rest.

    >>> c = chart(await rt.get("trip-ana-lisbon"), datetime.now(UTC))  # doctest: +SKIP
    >>> [(b.position, b.label) for b in c.bars][:2]  # doctest: +SKIP
    [('1', 'check_budget'), ('2', '')]
    """
    origin = info.created_at
    steps = sorted(info.steps, key=lambda s: _key(s.position))
    end = info.finished_at or max([now, *(s.at for s in steps)])
    hidden = max(0, len(steps) - limit)
    steps = steps[:limit]
    span = max((end - origin).total_seconds(), 1e-3)
    spans = _extents(steps, origin)
    rows: list[Bar] = []
    shown: set[str] = set()
    for step in steps:
        for prefix in _prefixes(step.position):
            if prefix not in shown:  # a branch: no checkpoint of its own
                shown.add(prefix)
                first, last = spans[prefix]
                rows.append(_bar(prefix, "", "branch", "branch", first,
                                 last - first, span))
        shown.add(step.position)
        tone = _tone(step)
        at = (step.at - origin).total_seconds()
        # an instant (now, uuid4, ...) takes no time: its inferred start would be the
        # workflow code before it, not the operation
        start = at if tone == "instant" else ((step.started_at or step.at) - origin
                                                ).total_seconds()
        rows.append(_bar(step.position, step.name, step.kind, tone, start,
                         at - start, span, attempts=step.attempts, summary=_summary(step)))
    if info.finished_at is None:
        since = max([0.0, *(b.start + b.duration for b in rows)])
        rows.append(_bar("", info.status.value + "…", "open", "open", since, span - since, span))
    return Chart(tuple(rows), span, hidden)


def _bar(position: str, label: str, kind: str, tone: str, start: float, duration: float,
         span: float, *, attempts: int = 1, summary: str = "") -> Bar:
    left = min(100.0, max(0.0, 100 * start / span))
    width = max(_MIN_WIDTH, min(100.0 - left, 100 * duration / span))
    left = min(left, 100.0 - width)  # a sliver at the very end stays inside the chart
    depth = 0 if not position else position.count(".")
    return Bar(position, depth, label, kind, tone, left, width, start, duration, attempts, summary)


def _tone(step: legato.StepInfo) -> str:
    if step.kind == "attempt":
        return "attempt"
    if not step.ok:
        return "failed"
    if step.kind in _WAITS:
        return "wait"
    if step.kind in _INSTANT:
        return "instant"
    return "ok"


def _extents(steps: Sequence[legato.StepInfo], origin: datetime) -> dict[str, tuple[float, float]]:
    """Per position and every prefix of it: the earliest start and latest finish under it."""
    out: dict[str, tuple[float, float]] = {}
    for s in steps:
        start = ((s.started_at or s.at) - origin).total_seconds()
        end = (s.at - origin).total_seconds()
        for prefix in [*_prefixes(s.position), s.position]:
            first, last = out.get(prefix, (start, end))
            out[prefix] = (min(first, start), max(last, end))
    return out


def _summary(step: legato.StepInfo) -> str:
    """A recorded time (a sleep's wake-up, ``now()``) reads as a time, not epoch seconds."""
    if step.kind in ("sleep", "now"):
        try:
            when = datetime.fromtimestamp(float(step.summary), UTC)
        except (ValueError, OverflowError, OSError):
            return step.summary
        text = when.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        return f"until {text}" if step.kind == "sleep" else text
    return step.summary


def _prefixes(position: str) -> list[str]:
    """``"3.1.2"`` → ``["3", "3.1"]``: the positions it nests under, outermost first."""
    parts = position.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _key(position: str) -> list[int]:
    return [int(p) for p in position.split(".")]


def _seconds(seconds: float) -> str:
    if seconds == 0:
        return "0"
    if seconds < 0.01:
        return f"{seconds * 1000:.1f} ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
