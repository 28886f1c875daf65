"""``Runtime``'s schedule methods: define, list, pause, resume and delete cron schedules.

A mixin of ``legato.Runtime`` (as the stores' protocol groups are of the
stores); the work is done in :mod:`._schedules`, and the loop that starts the
runs lives in the worker (``legato.durable.worker._scheduler``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from ..._clock import Clock
from ..._errors import ScheduleNotFound
from ..._serde import Serializer
from ...store import Store
from ._schedules import CatchUp, Overlap, ScheduleInfo, define, set_paused
from ._schedules import info as schedule_info

if TYPE_CHECKING:
    from ..worker import Worker

__all__ = ["RuntimeSchedules"]


class RuntimeSchedules:
    """The schedule methods of ``Runtime`` (mixed into it)."""

    if TYPE_CHECKING:
        store: Store
        clock: Clock
        serializer: Serializer
        _worker: Worker | None

    async def schedule(
        self, workflow: Callable[..., Awaitable[Any]] | str, cron: str, *,
        name: str | None = None, args: Iterable[Any] = (), kwargs: dict[str, Any] | None = None,
        timezone: str = "UTC", overlap: Overlap = "skip", catch_up: CatchUp = "latest",
    ) -> ScheduleInfo:
        """Start ``workflow`` on every tick of ``cron``, on whichever worker comes first.

        Each tick starts exactly one run, however many workers share the
        store, with the id ``f"{name}@{tick}"`` (tick in ISO-8601 UTC, e.g.
        ``"report@2026-12-01T09:00:00Z"``); ``legato.scheduled_time()``
        inside the run gives the tick. Defining a name again redefines it
        (a changed cron or time zone starts from the next tick after now).

        >>> await rt.schedule(report, "0 9 * * mon-fri", args=["sales"],
        ...                   timezone="Europe/Riga", overlap="buffer_one")

        Args:
            workflow: a ``@legato.workflow``, or the name of one (for a client
                without the code).
            cron: five fields, ``minute hour day month weekday`` (six: seconds first).
            name: the schedule's name (default: the workflow's name).
            args, kwargs: the arguments of every run.
            timezone: an IANA zone the cron is read in; DST as cron does it (see README).
            overlap: when a tick comes while the previous run is unfinished:
                ``"skip"`` the tick, ``"buffer_one"`` (start it when the
                previous run ends; at most one waits, further ticks are
                skipped), or ``"allow"`` both to run.
            catch_up: for ticks missed while no worker ran: ``"latest"`` starts
                the most recent one, ``"all"`` every one (in order, subject to
                ``overlap``), ``"none"`` none (a tick over a minute late is missed).

        Raises:
            ValueError: a bad cron, time zone, overlap, catch_up or name (named).
            TypeError: ``workflow`` is not a workflow, or ``args`` don't fit it.
        """
        scheduled = await define(
            self.store, self.clock, self.serializer, workflow, cron, name=name, args=args,
            kwargs=kwargs, timezone=timezone, overlap=overlap, catch_up=catch_up)
        self._poke_scheduler()
        return scheduled

    async def schedules(self) -> list[ScheduleInfo]:
        """Every schedule in the store, by name.

        >>> for s in await rt.schedules():
        ...     print(s.name, s.cron, s.next_tick, "paused" if s.paused else "")
        """
        return [schedule_info(r, self.serializer) for r in await self.store.schedules()]

    async def pause_schedule(self, name: str) -> None:
        """Start no more runs of schedule ``name`` until it is resumed (runs going on go on).

        >>> await rt.pause_schedule("report")

        Raises:
            ScheduleNotFound: no schedule has this name.
        """
        await set_paused(self.store, self.clock, name, True)

    async def resume_schedule(self, name: str) -> None:
        """Go on with a paused schedule from its next tick after now (paused ticks are not run).

        >>> await rt.resume_schedule("report")

        Raises:
            ScheduleNotFound: no schedule has this name.
        """
        await set_paused(self.store, self.clock, name, False)
        self._poke_scheduler()

    async def delete_schedule(self, name: str) -> None:
        """Forget schedule ``name``; the runs it started stay.

        A ``@workflow(schedule=...)`` is stored again when a worker with its
        code starts: remove the option too.

        >>> await rt.delete_schedule("report")

        Raises:
            ScheduleNotFound: no schedule has this name.
        """
        if not await self.store.delete_schedule(name):
            raise ScheduleNotFound(name)

    def _poke_scheduler(self) -> None:
        if self._worker is not None:
            self._worker.scheduler.poke()
