"""``legato tail``: follow workflows live, one line per status change."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import click
from rich.table import Table
from rich.text import Text

import legato

from ._app import app, client, json_option, run, store_option
from ._render import console, echo_json, progress_bar, summary_json
from ._when import parse_when

__all__ = ["Follower", "tail"]

_PAGE = 500
PROGRESS = "progress"  # the event legato.progress() sets
_ACTIVE = (legato.Status.RUNNING, legato.Status.WAITING)


@dataclass
class Follower:
    """Polls ``rt.list(since=...)`` and reports each status it has not reported yet.

    The window starts at ``since`` and moves forward past workflows that have
    finished, so a poll reads the unfinished ones and everything newer. The
    ``"progress"`` event of each running or waiting workflow (and of one that
    just finished) is read too: a new value is reported like a new status,
    and ``progress`` holds the latest of each.
    """

    since: float
    name: str | None = None
    queue: str | None = None
    seen: dict[str, legato.Status] = field(default_factory=dict)
    progress: dict[str, Any] = field(default_factory=dict)

    async def poll(self, rt: legato.Runtime) -> tuple[list[legato.WorkflowInfo], bool]:
        """The workflows whose status or progress changed since the last poll, and
        whether all are done."""
        infos = await self._window(rt)
        changed = [i for i in infos if self.seen.get(i.id) != i.status]
        moved = await self._progress(rt, infos, {i.id for i in changed})
        changed = [i for i in infos if i.id in moved or self.seen.get(i.id) != i.status]
        self.seen = {i.id: i.status for i in infos}
        unfinished = [_epoch(i.created_at) for i in infos if not i.status.finished]
        if unfinished:
            self.since = min(unfinished)
        elif infos:
            self.since = max(_epoch(i.created_at) for i in infos)
        return changed, not unfinished

    async def _progress(self, rt: legato.Runtime, infos: list[legato.WorkflowInfo],
                        changed: set[str]) -> set[str]:
        """Read the progress of the workflows that may have one; the ids whose value moved."""
        moved = set()
        for info in infos:
            if info.status in _ACTIVE or (info.id in changed and info.status.finished):
                value = await rt.handle(info.id).get_event(PROGRESS, timeout=0)
                if value is not None and self.progress.get(info.id) != value:
                    self.progress[info.id] = value
                    moved.add(info.id)
        return moved

    async def _window(self, rt: legato.Runtime) -> list[legato.WorkflowInfo]:
        infos: list[legato.WorkflowInfo] = []
        while True:
            page = await rt.list(name=self.name, queue=self.queue, since=self.since,
                                 order="oldest", limit=_PAGE, offset=len(infos))
            infos += page
            if len(page) < _PAGE:
                return infos


def _epoch(when: datetime) -> float:
    # a datetime is rounded to the microsecond: step back so the window keeps this workflow
    return when.timestamp() - 1e-6


@app.command()
@store_option
@json_option
@click.option("--since", metavar="WHEN", default="0s", show_default=True,
              help="also follow workflows created since: an age (10m), ISO time or epoch")
@click.option("--name", help="only runs of this workflow")
@click.option("--queue", help="only workflows enqueued on this queue")
@click.option("--interval", type=click.FloatRange(min=0.01), default=1.0, show_default=True,
              help="seconds between polls")
@click.option("--count", type=click.IntRange(min=1), help="stop after this many changes")
@click.option("--until-idle", is_flag=True,
              help="stop once every followed workflow has finished")
def tail(store: str, as_json: bool, since: str, name: str | None, queue: str | None,
         interval: float, count: int | None, until_idle: bool) -> None:
    """Follow workflows live: print a line each time one changes status (Ctrl-C stops)."""
    try:
        start = parse_when(since)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    assert start is not None
    follower = Follower(start.timestamp(), name=name, queue=queue)
    show = _json_line if as_json else _text_line

    async def body(rt: legato.Runtime) -> None:
        printed = 0
        while True:
            changed, idle = await follower.poll(rt)
            for info in changed:
                show(info, follower.progress.get(info.id))
                printed += 1
                if count is not None and printed >= count:
                    return
            if until_idle and idle:
                return
            await asyncio.sleep(interval)

    with contextlib.suppress(KeyboardInterrupt):
        run(client(store, body))


def _text_line(info: legato.WorkflowInfo, progress: Any) -> None:
    now = datetime.fromtimestamp(time.time(), UTC).strftime("%H:%M:%S")
    detail = f"  {info.error}" if info.error else ""
    line = f"{now}  {info.id}  {info.name}  {info.status.value}{detail}"
    bar = None if progress is None else progress_bar(progress)
    if bar is None:
        click.echo(line)
    else:
        row = Table.grid(padding=(0, 2))
        row.add_row(Text(line), bar)
        console().print(row)


def _json_line(info: legato.WorkflowInfo, progress: Any) -> None:
    echo_json({**summary_json(info), "progress": progress}, lines=True)
