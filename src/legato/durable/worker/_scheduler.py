"""The schedule loop: starts one workflow run per cron tick, across every worker.

Every worker runs this loop; they coordinate only through the store. A
schedule's state (its next tick, the latest run started, a tick held back)
changes by compare-and-set: a worker reads it, decides what the due tick
calls for (see :func:`plan`), and writes the new state only if no one else
changed it meanwhile. Of any number of workers handling one tick, exactly
one succeeds, and only that one starts the run.

The run is created *after* its state is written, under an id made of the
schedule's name and the tick (``"nightly@2026-12-01T02:00:00Z"``). A worker
killed between the two leaves a state naming a run that doesn't exist; the
next pass of any worker sees that and creates it. Creating twice is harmless
(the id is taken: nothing is written), so every tick starts at most one run,
and a decided tick is never lost. (The other order, create then advance,
would let a stale reader start a run for a tick another worker had decided
to skip.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Final

from ..._cron import latest_at_or_before, next_after, run_id
from ..._errors import LegatoError
from ...store import NewWorkflow, ScheduleRecord, ScheduleState
from ..workflow import Workflow, lookup, registered_names
from ._news import SAFETY_POLL

if TYPE_CHECKING:
    from ._worker import Worker

__all__ = ["CATCH_UPS", "LATE", "OVERLAPS", "Scheduler", "plan"]

log = logging.getLogger("legato.schedules")

OVERLAPS: Final = ("skip", "buffer_one", "allow")
CATCH_UPS: Final = ("latest", "all", "none")
LATE: Final = 60.0  # seconds after its tick that a run is still on time (catch_up="none")

_FINISHED = ("succeeded", "failed", "cancelled")
_RETRY_FIRST, _RETRY_MAX = 0.1, 5.0


def plan(s: ScheduleRecord, now: float, previous_done: bool
         ) -> tuple[ScheduleState, float | None] | None:
    """The next state of ``s`` at durable time ``now``, and the tick to start (or ``None``).

    ``None`` when nothing is due. ``previous_done``: the latest run started
    (``s.state.last_run``) has finished, or there is none.
    """
    st = s.state
    if st.buffered is not None and previous_done:
        return replace(st, last_tick=st.buffered, last_run=run_id(s.name, st.buffered),
                       buffered=None), st.buffered
    if st.next_tick > now:
        return None
    tick = st.next_tick if s.catch_up == "all" else latest_at_or_before(s.cron, s.timezone, now)
    following = next_after(s.cron, s.timezone, tick)
    if s.catch_up == "none" and now - tick > LATE:
        return replace(st, next_tick=following), None  # missed: dropped
    if previous_done or s.overlap == "allow":
        return ScheduleState(following, tick, run_id(s.name, tick), st.buffered), tick
    if s.overlap == "buffer_one" and st.buffered is None:
        return replace(st, next_tick=following, buffered=tick), None
    return replace(st, next_tick=following), None  # skipped: the previous run goes on


class Scheduler:
    """One worker's schedule loop (started and stopped with the worker)."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.store = worker.engine.store
        self.clock = worker.engine.clock
        self._wakeup = asyncio.Event()
        self._stored: dict[str, str] = {}  # by schedule: its latest run, known to be stored
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="legato-schedules")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None

    def poke(self) -> None:
        """Look at the schedules now (one was added, changed or resumed)."""
        self._wakeup.set()

    async def register_decorated(self) -> None:
        """Store a schedule for each ``@workflow(schedule=...)`` this process has.

        Named after the workflow; an unchanged cron keeps its next tick, so
        restarting workers neither skips nor repeats one.
        """
        for name in registered_names():
            wf = lookup(name)
            if wf is None or wf.schedule is None:
                continue
            data = wf.encode_input(self.worker.engine.serializer, (), {})
            first = next_after(wf.schedule, "UTC", self.clock.now())
            await self.store.put_schedule(ScheduleRecord(
                name, name, wf.schedule, "UTC", data, "skip", "latest", False,
                ScheduleState(first)))

    async def _loop(self) -> None:
        backoff = _RETRY_FIRST
        while True:
            self._wakeup.clear()
            try:
                wake_at, watched = await self.fire_due()
                await self._sleep(wake_at, watched)
            except LegatoError:
                log.exception("the schedules could not be read or advanced; retrying in %.1f s",
                              backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _RETRY_MAX)
            else:
                backoff = _RETRY_FIRST

    async def fire_due(self) -> tuple[float | None, list[str]]:
        """Handle every due tick; return the next tick and the runs a buffered tick waits on."""
        wake_at: float | None = None
        watched: list[str] = []
        for s in await self.store.schedules():
            if s.paused:
                continue
            try:
                handled = await self._handle(s)
            except LegatoError:
                raise  # the store: the loop retries
            except Exception:
                # one bad definition (a zone this machine lacks) must not stop the others
                log.exception("schedule %r can't be handled here; skipping it", s.name)
                continue
            if handled is None:
                continue
            st = handled.state
            wake_at = st.next_tick if wake_at is None else min(wake_at, st.next_tick)
            if st.buffered is not None and st.last_run is not None:
                watched.append(st.last_run)
        return wake_at, watched

    async def _handle(self, s: ScheduleRecord) -> ScheduleRecord | None:
        """Take ``s`` through every action due now; its state after, ``None`` if it went."""
        while True:
            now = self.clock.now()
            await self._ensure_stored(s)
            if s.state.buffered is None and s.state.next_tick > now:
                return s  # nothing due: no need to read the previous run
            step = plan(s, now, await self._previous_done(s))
            if step is None:
                return s
            new, tick = step
            if not await self.store.advance_schedule(s.name, s.state, new):
                log.debug("schedule %r: another worker handled it first", s.name)
                fresh = await self.store.get_schedule(s.name)
                if fresh is None or fresh.paused:
                    return None
                s = fresh
                continue
            s = replace(s, state=new)
            if tick is not None:
                await self._start(s, tick)
                self._stored[s.name] = run_id(s.name, tick)

    async def _ensure_stored(self, s: ScheduleRecord) -> None:
        """Create the latest run decided if it was never stored (its worker died first)."""
        st = s.state
        if st.last_run is None or st.last_tick is None or self._stored.get(s.name) == st.last_run:
            return
        if await self.store.get(st.last_run) is None:
            await self._start(s, st.last_tick)
        self._stored[s.name] = st.last_run

    async def _previous_done(self, s: ScheduleRecord) -> bool:
        """Whether the latest run started has finished (or none was)."""
        if s.state.last_run is None:
            return True
        record = await self.store.get(s.state.last_run)
        return record is not None and record.status in _FINISHED

    async def _start(self, s: ScheduleRecord, tick: float) -> None:
        workflow_id = run_id(s.name, tick)
        wf = lookup(s.workflow)
        if wf is None:  # code this process lacks: a worker that has it claims the run
            await self.store.create(NewWorkflow(workflow_id, s.workflow, s.input, None, 0.0))
            return
        queue = _queue_name(wf)
        deadline = None if wf.timeout is None else self.clock.now() + wf.timeout
        new = NewWorkflow(workflow_id, wf.name, s.input, None, 0.0, deadline=deadline,
                          queue=queue)
        await self.worker.admit(wf, new, here=queue is None)

    async def _sleep(self, wake_at: float | None, watched: list[str]) -> None:
        """Until the next tick, a poke, a watched run's end, or a poll (schedules of others)."""
        waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(self._wakeup.wait())]
        if wake_at is not None:
            waits.append(asyncio.ensure_future(self.clock.sleep_until(wake_at)))
        events = [(w, self.worker.watch(w)) for w in watched]
        waits += [asyncio.ensure_future(e.wait()) for _, e in events]
        try:
            if await self._any_finished(watched):  # ended before the watch began: no news
                return
            # a watched run's finish elsewhere is news only while ends are heard
            hearing = self.worker.bus.hearing_ends() if watched else contextlib.nullcontext(False)
            async with hearing as started:
                if started:
                    return  # it may have ended before: look again
                await asyncio.wait(waits, timeout=SAFETY_POLL,
                                   return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
            for workflow_id, event in events:
                self.worker.unwatch(workflow_id, event)


    async def _any_finished(self, workflow_ids: list[str]) -> bool:
        for workflow_id in workflow_ids:
            record = await self.store.get(workflow_id)
            if record is not None and record.status in _FINISHED:
                return True
        return False


def _queue_name(wf: Workflow[Any, Any]) -> str | None:
    q = wf.queue
    return q if q is None or isinstance(q, str) else q.name
