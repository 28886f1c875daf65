"""``legato schedules``: list cron schedules; ``pause``, ``resume`` or ``delete`` one."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click
from rich.table import Table

import legato

from ._app import app, client, json_option, run, store_option
from ._render import console, echo_json

__all__ = ["schedules"]


@app.group(invoke_without_command=True)
@store_option
@json_option
@click.pass_context
def schedules(ctx: click.Context, store: str, as_json: bool) -> None:
    """List cron schedules (next tick, latest run); pause, resume or delete one.

    \b
    Example:
        legato schedules --store legato.db
        legato schedules pause nightly-report
    """
    if ctx.invoked_subcommand is not None:
        return
    found = run(client(store, lambda rt: rt.schedules()))
    if as_json:
        echo_json([schedule_json(s) for s in found])
    else:
        render_schedules(found)


@schedules.command()
@click.argument("name")
@store_option
def pause(name: str, store: str) -> None:
    """Start no more runs of schedule NAME until it is resumed."""
    run(client(store, lambda rt: rt.pause_schedule(name)))
    click.echo(f"schedule {name} paused")


@schedules.command()
@click.argument("name")
@store_option
def resume(name: str, store: str) -> None:
    """Go on with schedule NAME from its next tick after now (paused ticks don't run)."""
    run(client(store, lambda rt: rt.resume_schedule(name)))
    click.echo(f"schedule {name} resumed")


@schedules.command()
@click.argument("name")
@store_option
def delete(name: str, store: str) -> None:
    """Forget schedule NAME (the runs it started stay)."""
    run(client(store, lambda rt: rt.delete_schedule(name)))
    click.echo(f"schedule {name} deleted")


def schedule_json(s: legato.ScheduleInfo) -> dict[str, Any]:
    """One schedule as ``legato schedules --json`` shows it."""
    return {
        "name": s.name, "workflow": s.workflow, "cron": s.cron, "timezone": s.timezone,
        "overlap": s.overlap, "catch_up": s.catch_up, "paused": s.paused,
        "next_tick": _iso(s.next_tick), "last_tick": _iso(s.last_tick),
        "last_run": s.last_run, "buffered": _iso(s.buffered), "args": list(s.args),
        "kwargs": dict(s.kwargs),
    }


def render_schedules(found: list[legato.ScheduleInfo]) -> None:
    """The table ``legato schedules`` prints (times in UTC)."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("NAME", "WORKFLOW", "CRON", "TZ", "NEXT (UTC)", "LAST RUN", "STATE"):
        table.add_column(column, no_wrap=True)
    for s in found:
        state = "paused" if s.paused else "active"
        if s.buffered is not None:
            state += f", holds {s.buffered:%Y-%m-%d %H:%M:%S}"
        table.add_row(s.name, s.workflow, s.cron, s.timezone,
                      "-" if s.paused else f"{s.next_tick:%Y-%m-%d %H:%M:%S}",
                      s.last_run or "-", state)
    console().print(table)


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()
