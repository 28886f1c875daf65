"""``GET /metrics``: the store's workflows in the Prometheus text format.

Every figure is read from the store through ``rt.list`` when scraped, so it
is right for every worker at once, whichever process runs them::

    legato_workflows{status="waiting"} 12              gauge: workflows by status
    legato_workflows_by_name{name="report",status="failed"} 1
    legato_queue_depth{queue="emails"} 40              gauge: pending, per queue ("" = none)
    legato_workflows_suspended 12                      gauge: waiting (unloaded until due)
    legato_metrics_scrape_seconds 0.004                how long reading them took

The public inspection API has no count, so a scrape pages through every
workflow (1,000 a query): fine for thousands, slow for millions.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import legato

__all__ = ["CONTENT_TYPE", "Tally", "exposition", "tally"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_PAGE = 1000


@dataclass
class Tally:
    """Workflows counted by status, by (name, status), and pending ones by queue."""

    by_status: Counter[str] = field(default_factory=Counter)
    by_name: Counter[tuple[str, str]] = field(default_factory=Counter)
    pending_by_queue: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0


async def tally(rt: legato.Runtime) -> Tally:
    """Count the store's workflows, one page of ``rt.list`` at a time.

    >>> t = await tally(rt)  # doctest: +SKIP
    >>> t.by_status["waiting"]  # doctest: +SKIP
    12
    """
    began = time.perf_counter()
    out = Tally()
    for status in legato.Status:
        offset = 0
        while True:
            page = await rt.list(status, limit=_PAGE, offset=offset, order="oldest")
            for info in page:
                out.by_status[status.value] += 1
                out.by_name[info.name, status.value] += 1
                if status == legato.Status.PENDING:
                    out.pending_by_queue[info.queue or ""] += 1
            if len(page) < _PAGE:
                break
            offset += _PAGE
    out.seconds = time.perf_counter() - began
    return out


def exposition(t: Tally) -> str:
    """The Prometheus text format of a :class:`Tally`.

    >>> print(exposition(Tally(by_status=Counter(waiting=2))))  # doctest: +ELLIPSIS
    # HELP legato_workflows Workflows in the store, by status.
    # TYPE legato_workflows gauge
    legato_workflows{status="pending"} 0
    ...
    """
    lines: list[str] = []

    def family(name: str, help_: str, samples: list[tuple[dict[str, str], float]]) -> None:
        lines.extend([f"# HELP {name} {help_}", f"# TYPE {name} gauge"])
        for labels, value in samples:
            text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
            lines.append(f"{name}{{{text}}} {value:g}" if text else f"{name} {value:g}")

    family("legato_workflows", "Workflows in the store, by status.",
           [({"status": s.value}, t.by_status[s.value]) for s in legato.Status])
    family("legato_workflows_by_name", "Workflows in the store, by workflow name and status.",
           [({"name": n, "status": s}, c) for (n, s), c in sorted(t.by_name.items())])
    family("legato_queue_depth", "Pending workflows per queue (queue=\"\": no queue).",
           [({"queue": q}, c) for q, c in sorted(t.pending_by_queue.items())])
    family("legato_workflows_suspended", "Workflows waiting for a time, a signal or a child.",
           [({}, t.by_status[legato.Status.WAITING.value])])
    family("legato_metrics_scrape_seconds", "Seconds this scrape took to read the store.",
           [({}, round(t.seconds, 6))])
    return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
