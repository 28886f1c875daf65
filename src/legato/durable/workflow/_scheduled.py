"""``legato.scheduled_time()``: the tick a scheduled run was started for."""

from __future__ import annotations

from datetime import datetime

from ..._cron import tick_of
from ._recorded import workflow_id

__all__ = ["scheduled_time"]


def scheduled_time() -> datetime | None:
    """The time the schedule named for this run (an aware UTC datetime), or ``None``.

    A schedule's run has the id ``"<schedule>@<tick>"``, so this needs no
    record and is the same on every replay. It is the *scheduled* time: a
    run caught up after downtime, or buffered behind a slow previous run,
    starts later than it. ``None`` for a run no schedule started.

    Example::

        @legato.workflow(schedule="0 2 * * *")
        async def nightly() -> None:
            day = legato.scheduled_time()        # 02:00 UTC of the day it is for
            await export(day.date() if day else None)

    Raises:
        LegatoError: outside a workflow and its steps.
    """
    return tick_of(workflow_id())
