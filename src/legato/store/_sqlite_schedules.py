"""Schedules on SQLite: a table of definitions, and a compare-and-set on their state.

Every change to a schedule's state is one ``UPDATE ... WHERE`` the state is
still what the caller read: SQLite has one writer at a time across every
process sharing the file, so of two workers handling the same tick exactly
one succeeds (see ``legato.durable.worker._scheduler``).
"""

from __future__ import annotations

import sqlite3
import time
from typing import TYPE_CHECKING, Any

from ._schedule import ScheduleRecord, ScheduleState

__all__ = ["SqliteSchedules"]

_COLUMNS = ("name, workflow, cron, timezone, input, overlap, catch_up, paused, next_tick,"
            " last_tick, last_run, buffered, created_at, updated_at")
_SAME_STATE = ("next_tick = ? AND last_tick IS ? AND last_run IS ? AND buffered IS ?")


def _record(row: tuple[Any, ...]) -> ScheduleRecord:
    (name, workflow, cron, timezone, data, overlap, catch_up, paused, next_tick, last_tick,
     last_run, buffered, created_at, updated_at) = row
    return ScheduleRecord(name, workflow, cron, timezone, bytes(data), overlap, catch_up,
                          bool(paused), ScheduleState(next_tick, last_tick, last_run, buffered),
                          created_at, updated_at)


def _state(state: ScheduleState) -> tuple[Any, ...]:
    return (state.next_tick, state.last_tick, state.last_run, state.buffered)


class SqliteSchedules:
    """The :class:`~legato.store.Schedules` part of ``SqliteStore`` (mixed into it)."""

    if TYPE_CHECKING:
        async def _write(self, action: str, op: Any) -> Any: ...
        def _read(self, action: str, sql: str, params: tuple[Any, ...]) -> list[Any]: ...

    async def put_schedule(self, schedule: ScheduleRecord) -> ScheduleRecord:
        s = schedule

        def op(conn: sqlite3.Connection) -> ScheduleRecord:
            now = time.time()
            row = conn.execute(
                f"INSERT INTO schedules ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
                " ?, ?) ON CONFLICT (name) DO UPDATE SET workflow = excluded.workflow,"
                " input = excluded.input, overlap = excluded.overlap,"
                " catch_up = excluded.catch_up, updated_at = excluded.updated_at,"
                " next_tick = CASE WHEN cron = excluded.cron AND timezone = excluded.timezone"
                " THEN next_tick ELSE excluded.next_tick END,"
                " cron = excluded.cron, timezone = excluded.timezone"
                f" RETURNING {_COLUMNS}",
                (s.name, s.workflow, s.cron, s.timezone, s.input, s.overlap, s.catch_up,
                 s.paused, *_state(s.state), now, now)).fetchone()
            return _record(row)

        stored: ScheduleRecord = await self._write(f"store schedule {s.name!r}", op)
        return stored

    async def get_schedule(self, name: str) -> ScheduleRecord | None:
        rows = self._read(f"read schedule {name!r}",
                          f"SELECT {_COLUMNS} FROM schedules WHERE name = ?", (name,))
        return _record(rows[0]) if rows else None

    async def schedules(self) -> list[ScheduleRecord]:
        rows = self._read("read schedules", f"SELECT {_COLUMNS} FROM schedules ORDER BY name",
                          ())
        return [_record(r) for r in rows]

    async def pause_schedule(self, name: str, paused: bool, next_tick: float) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            return conn.execute(
                "UPDATE schedules SET paused = ?, next_tick = CASE WHEN ? THEN next_tick"
                " ELSE ? END, updated_at = ? WHERE name = ?",
                (paused, paused, next_tick, time.time(), name)).rowcount == 1

        done: bool = await self._write(f"pause or resume schedule {name!r}", op)
        return done

    async def advance_schedule(self, name: str, seen: ScheduleState, new: ScheduleState
                               ) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            return conn.execute(
                "UPDATE schedules SET next_tick = ?, last_tick = ?, last_run = ?, buffered = ?,"
                f" updated_at = ? WHERE name = ? AND {_SAME_STATE}",
                (*_state(new), time.time(), name, *_state(seen))).rowcount == 1

        done: bool = await self._write(f"advance schedule {name!r}", op)
        return done

    async def delete_schedule(self, name: str) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            return conn.execute("DELETE FROM schedules WHERE name = ?", (name,)).rowcount == 1

        done: bool = await self._write(f"delete schedule {name!r}", op)
        return done
