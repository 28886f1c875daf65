"""What a store keeps of cron schedules (see ``legato.Runtime.schedule``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["ScheduleRecord", "ScheduleState", "Schedules"]


@dataclass(frozen=True, slots=True)
class ScheduleState:
    """Where a schedule is: what :meth:`Schedules.advance_schedule` compares and sets."""

    next_tick: float  # the next tick not yet handled (epoch seconds)
    last_tick: float | None = None  # the tick of the latest run started
    last_run: str | None = None  # that run's workflow id
    buffered: float | None = None  # a tick held back by overlap="buffer_one"


@dataclass(frozen=True, slots=True)
class ScheduleRecord:
    """A schedule's row: what to start, when, and where it is."""

    name: str
    workflow: str  # the workflow's registered name
    cron: str
    timezone: str
    input: bytes  # the encoded arguments of each run
    overlap: str  # "skip", "buffer_one" or "allow"
    catch_up: str  # "latest", "all" or "none"
    paused: bool
    state: ScheduleState
    created_at: float = 0.0
    updated_at: float = 0.0


class Schedules(Protocol):
    """Cron schedules: their definitions, and the state that makes each tick start once."""

    async def put_schedule(self, schedule: ScheduleRecord) -> ScheduleRecord:
        """Insert ``schedule``, or redefine the one of that name; return the stored row.

        A redefinition keeps ``paused`` and the state, except that a new
        ``cron`` or ``timezone`` takes ``schedule.state.next_tick``.
        """
        ...

    async def get_schedule(self, name: str) -> ScheduleRecord | None:
        """One schedule."""
        ...

    async def schedules(self) -> list[ScheduleRecord]:
        """Every schedule, by name."""
        ...

    async def pause_schedule(self, name: str, paused: bool, next_tick: float) -> bool:
        """Pause or resume; resuming sets ``next_tick``. ``False``: no such schedule."""
        ...

    async def advance_schedule(self, name: str, seen: ScheduleState, new: ScheduleState
                               ) -> bool:
        """Set the state to ``new`` if it is still ``seen`` (compare-and-set across processes)."""
        ...

    async def delete_schedule(self, name: str) -> bool:
        """Forget a schedule (its runs stay); ``False``: there was none."""
        ...
