"""Cron schedules as a client sees them: define, list, pause, resume, delete.

``Runtime.schedule`` and its siblings delegate here. The loop that starts
the runs lives in the worker (``legato.durable.worker._scheduler``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, final

from ..._clock import Clock
from ..._cron import check_cron, check_timezone, next_after
from ..._errors import ScheduleNotFound
from ..._serde import Serializer
from ...store import ScheduleRecord, ScheduleState, Store
from ..worker import CATCH_UPS, OVERLAPS
from ..workflow import Workflow, lookup
from ._inspection import decode_value, to_datetime

__all__ = ["Overlap", "CatchUp", "ScheduleInfo", "define", "info", "set_paused"]

Overlap = Literal["skip", "buffer_one", "allow"]
CatchUp = Literal["latest", "all", "none"]


@final
@dataclass(frozen=True, slots=True)
class ScheduleInfo:
    """A schedule as :meth:`Runtime.schedules` lists it (times are aware UTC datetimes).

    ``next_tick`` is the next tick not yet handled; ``last_tick`` and
    ``last_run`` name the latest run started (its workflow id is
    ``f"{name}@{tick}"``); ``buffered`` is a tick held back by
    ``overlap="buffer_one"`` until the previous run ends. ``args`` and
    ``kwargs`` are each run's arguments.
    """

    name: str
    workflow: str
    cron: str
    timezone: str
    overlap: str
    catch_up: str
    paused: bool
    next_tick: datetime
    last_tick: datetime | None
    last_run: str | None
    buffered: datetime | None
    created_at: datetime
    updated_at: datetime
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)


def info(record: ScheduleRecord, serializer: Serializer) -> ScheduleInfo:
    """The public view of a stored schedule."""
    st = record.state
    inputs = decode_value(serializer, record.input)
    if not isinstance(inputs, Mapping):
        inputs = {}
    return ScheduleInfo(
        record.name, record.workflow, record.cron, record.timezone, record.overlap,
        record.catch_up, record.paused, to_datetime(st.next_tick),
        None if st.last_tick is None else to_datetime(st.last_tick), st.last_run,
        None if st.buffered is None else to_datetime(st.buffered),
        to_datetime(record.created_at), to_datetime(record.updated_at),
        tuple(inputs.get("args") or ()), dict(inputs.get("kwargs") or {}))


async def define(
    store: Store, clock: Clock, serializer: Serializer, workflow: Any, cron: str, *,
    name: str | None, args: Iterable[Any], kwargs: Mapping[str, Any] | None, timezone: str,
    overlap: str, catch_up: str,
) -> ScheduleInfo:
    """Check everything, then store the schedule (see :meth:`Runtime.schedule`)."""
    wf_name, wf = _workflow(workflow)
    check_cron(cron)
    check_timezone(timezone)
    _check_choice("overlap", overlap, OVERLAPS)
    _check_choice("catch_up", catch_up, CATCH_UPS)
    name = wf_name if name is None else name
    if not isinstance(name, str) or not name or "@" in name:
        raise ValueError(f"name={name!r}: a schedule name must be a non-empty str without '@' "
                         "(its runs are named '<schedule>@<tick>')")
    positional, keywords = list(args), dict(kwargs or {})
    if wf is not None:  # checked against its signature
        data = wf.encode_input(serializer, tuple(positional), keywords)
    else:  # a workflow whose code lives elsewhere: its runs are checked when they start
        data = serializer.dumps({"args": positional, "kwargs": keywords},
                                label=f"the arguments of schedule {name!r}")
    first = next_after(cron, timezone, clock.now())
    stored = await store.put_schedule(ScheduleRecord(
        name, wf_name, cron, timezone, data, overlap, catch_up, False, ScheduleState(first)))
    return info(stored, serializer)


async def set_paused(store: Store, clock: Clock, name: str, paused: bool) -> None:
    """Pause or resume; a resumed schedule goes on from the next tick after now."""
    record = await store.get_schedule(name)
    if record is None:
        raise ScheduleNotFound(name)
    upcoming = next_after(record.cron, record.timezone, clock.now())
    if not await store.pause_schedule(name, paused, upcoming):
        raise ScheduleNotFound(name)


def _workflow(workflow: Any) -> tuple[str, Workflow[Any, Any] | None]:
    if isinstance(workflow, Workflow):
        return workflow.name, workflow
    if isinstance(workflow, str) and workflow:
        return workflow, lookup(workflow)
    raise TypeError(
        f"rt.schedule takes a @legato.workflow or a workflow's name, not "
        f"{getattr(workflow, '__qualname__', workflow)!r}; decorate it with @legato.workflow")


def _check_choice(option: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        shown = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{option}={value!r} is not one of {shown}")
