"""Schedules on PostgreSQL: a table of definitions, and a compare-and-set on their state.

Every change to a schedule's state is one ``UPDATE ... WHERE`` the state is
still what the caller read; PostgreSQL re-checks the condition on the row a
concurrent update committed, so of two workers handling the same tick exactly
one succeeds (see ``legato.durable.worker._scheduler``).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ._schedule import ScheduleRecord, ScheduleState

__all__ = ["PostgresSchedules"]

_COLUMNS = ("name, workflow, cron, timezone, input, overlap, catch_up, paused, next_tick,"
            " last_tick, last_run, buffered, created_at, updated_at")
_SAME_STATE = ("next_tick = $7 AND last_tick IS NOT DISTINCT FROM $8"
               " AND last_run IS NOT DISTINCT FROM $9 AND buffered IS NOT DISTINCT FROM $10")


def _record(row: Any) -> ScheduleRecord:
    return ScheduleRecord(
        row["name"], row["workflow"], row["cron"], row["timezone"], bytes(row["input"]),
        row["overlap"], row["catch_up"], row["paused"],
        ScheduleState(row["next_tick"], row["last_tick"], row["last_run"], row["buffered"]),
        row["created_at"], row["updated_at"])


def _state(state: ScheduleState) -> tuple[Any, ...]:
    return (state.next_tick, state.last_tick, state.last_run, state.buffered)


class PostgresSchedules:
    """The :class:`~legato.store.Schedules` part of ``PostgresStore`` (mixed into it)."""

    if TYPE_CHECKING:
        async def _write(self, action: str, sql: str, *args: Any) -> list[Any]: ...
        async def _read(self, action: str, sql: str, *args: Any) -> list[Any]: ...

    async def put_schedule(self, schedule: ScheduleRecord) -> ScheduleRecord:
        s, now = schedule, time.time()
        rows = await self._write(
            f"store schedule {s.name!r}",
            f"INSERT INTO schedules ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,"
            " $10, $11, $12, $13, $13) ON CONFLICT (name) DO UPDATE SET"
            " workflow = excluded.workflow, input = excluded.input,"
            " overlap = excluded.overlap, catch_up = excluded.catch_up,"
            " updated_at = excluded.updated_at,"
            " next_tick = CASE WHEN schedules.cron = excluded.cron"
            " AND schedules.timezone = excluded.timezone"
            " THEN schedules.next_tick ELSE excluded.next_tick END,"
            f" cron = excluded.cron, timezone = excluded.timezone RETURNING {_COLUMNS}",
            s.name, s.workflow, s.cron, s.timezone, s.input, s.overlap, s.catch_up, s.paused,
            *_state(s.state), now)
        return _record(rows[0])

    async def get_schedule(self, name: str) -> ScheduleRecord | None:
        rows = await self._read(f"read schedule {name!r}",
                                f"SELECT {_COLUMNS} FROM schedules WHERE name = $1", name)
        return _record(rows[0]) if rows else None

    async def schedules(self) -> list[ScheduleRecord]:
        rows = await self._read("read schedules",
                                f"SELECT {_COLUMNS} FROM schedules ORDER BY name")
        return [_record(r) for r in rows]

    async def pause_schedule(self, name: str, paused: bool, next_tick: float) -> bool:
        rows = await self._write(
            f"pause or resume schedule {name!r}",
            "UPDATE schedules SET paused = $2, next_tick = CASE WHEN $2 THEN next_tick"
            " ELSE $3 END, updated_at = $4 WHERE name = $1 RETURNING 1",
            name, paused, next_tick, time.time())
        return bool(rows)

    async def advance_schedule(self, name: str, seen: ScheduleState, new: ScheduleState
                               ) -> bool:
        rows = await self._write(
            f"advance schedule {name!r}",
            "UPDATE schedules SET next_tick = $2, last_tick = $3, last_run = $4, buffered = $5,"
            f" updated_at = $6 WHERE name = $1 AND {_SAME_STATE} RETURNING 1",
            name, *_state(new), time.time(), *_state(seen))
        return bool(rows)

    async def delete_schedule(self, name: str) -> bool:
        rows = await self._write(f"delete schedule {name!r}",
                                 "DELETE FROM schedules WHERE name = $1 RETURNING 1", name)
        return bool(rows)
