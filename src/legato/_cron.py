"""Cron expressions, time zones and schedule ticks (parsing by ``cronsim``).

A tick is a time a cron expression names, in epoch seconds. Ticks are
computed in the schedule's time zone with ``zoneinfo``, and DST follows
cronsim's rules (those of Debian's cron): a daily job at a local time that
doesn't exist on the spring-forward day runs once, when the clock skips
past it; one at a time that happens twice in autumn runs once, at the first.

Each tick's run has the id ``"<schedule>@<tick in ISO-8601 UTC>"``, e.g.
``"nightly@2026-12-01T02:00:00Z"``: a second start of the same tick finds
the id taken, and ``legato.scheduled_time()`` reads the tick back from it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

__all__ = ["check_cron", "check_timezone", "latest_at_or_before", "next_after", "run_id",
           "tick_of"]

_STAMP = "%Y-%m-%dT%H:%M:%SZ"
_STAMP_LEN = len("2026-12-01T02:00:00Z")


def check_cron(cron: object) -> str:
    """``cron`` if it is a valid 5-field (or 6-field, with seconds first) cron expression.

    >>> check_cron("*/5 * * * *")
    '*/5 * * * *'

    Raises:
        ValueError: naming the expression and what is wrong with it.
    """
    if not isinstance(cron, str):
        raise TypeError(f"cron must be a str like '*/5 * * * *', not {cron!r}")
    try:
        CronSim(cron, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as exc:
        raise ValueError(
            f"cron={cron!r} is not a valid cron expression ({exc}); use five fields "
            "'minute hour day-of-month month day-of-week', e.g. '*/5 * * * *' or '0 2 * * mon'"
        ) from None
    return cron


def check_timezone(timezone: object) -> ZoneInfo:
    """The zone named ``timezone`` (an IANA name such as ``"Europe/Riga"`` or ``"UTC"``).

    Raises:
        ValueError: the name is not a time zone this machine knows.
    """
    if not isinstance(timezone, str) or not timezone:
        raise TypeError(f"timezone must be an IANA zone name like 'UTC', not {timezone!r}")
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"timezone={timezone!r} is not a known time zone; use an IANA name such as "
            "'UTC', 'Europe/Riga' or 'America/New_York' (pip install tzdata if the "
            "system has no zone database)") from None


def next_after(cron: str, timezone: str, after: float) -> float:
    """The first tick of ``cron`` in ``timezone`` strictly after ``after`` (epoch seconds)."""
    start = datetime.fromtimestamp(after, ZoneInfo(timezone))
    return next(iter(CronSim(cron, start))).timestamp()


def latest_at_or_before(cron: str, timezone: str, when: float) -> float:
    """The last tick of ``cron`` in ``timezone`` at or before ``when``."""
    zone = ZoneInfo(timezone)
    start = datetime.fromtimestamp(when, zone)
    if start.microsecond == 0 and next_after(cron, timezone, when - 1) == when:
        return when
    return next(iter(CronSim(cron, start, reverse=True))).timestamp()


def run_id(schedule: str, tick: float) -> str:
    """The id of ``schedule``'s run for ``tick``: ``"nightly@2026-12-01T02:00:00Z"``."""
    return f"{schedule}@{datetime.fromtimestamp(tick, UTC).strftime(_STAMP)}"


def tick_of(workflow_id: str) -> datetime | None:
    """The tick a schedule's run id names (an aware UTC datetime), or ``None``."""
    stamp = workflow_id[-_STAMP_LEN:]
    if workflow_id[-_STAMP_LEN - 1:-_STAMP_LEN] != "@":
        return None
    try:
        return datetime.strptime(stamp, _STAMP).replace(tzinfo=UTC)
    except ValueError:
        return None
