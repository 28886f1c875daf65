"""How the commands show workflows: JSON documents, tables, and the step timeline as a tree.

The JSON shapes are the CLI's contract with scripts: keys are only added,
never renamed. Times are ISO 8601 in UTC, durations seconds.
"""

from __future__ import annotations

import reprlib
import sys
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import click
import orjson
from rich.console import Console
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

import legato

__all__ = [
    "console", "echo_json", "info_json", "progress_bar", "render_events", "render_info",
    "render_list", "step_json", "summary_json", "timeline_tree",
]

_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 80
_PIPED_WIDTH = 200
_BAR_WIDTH = 30
_STATUS_STYLE = {
    "pending": "dim", "running": "cyan", "waiting": "yellow", "succeeded": "green",
    "failed": "bold red", "cancelled": "magenta",
}


def console() -> Console:
    """A console on the current ``sys.stdout`` (a test runner may swap it); no colour when piped."""
    out = Console(file=sys.stdout, highlight=False)
    if not out.is_terminal:
        out.width = _PIPED_WIDTH  # a pipe or a file has no width: don't fold rows at 80
    return out


def echo_json(value: Any, *, lines: bool = False) -> None:
    """Print ``value`` as indented JSON (one line each with ``lines=True``, JSON Lines).

    Values JSON can't hold are shown by ``repr``.
    """
    option = orjson.OPT_NON_STR_KEYS | (0 if lines else orjson.OPT_INDENT_2)
    click.echo(orjson.dumps(value, default=repr, option=option).decode())


def summary_json(info: legato.WorkflowInfo) -> dict[str, Any]:
    """The fields ``legato list --json`` shows for each workflow."""
    return {
        "id": info.id, "name": info.name, "status": info.status.value,
        "created_at": _iso(info.created_at), "updated_at": _iso(info.updated_at),
        "finished_at": _iso(info.finished_at), "duration": info.duration,
        "queue": info.queue, "priority": info.priority, "run_id": info.run_id,
        "parent_id": info.parent_id, "error": info.error,
        "failed_step": None if info.failed_step is None else info.failed_step.position,
    }


def info_json(info: legato.WorkflowInfo) -> dict[str, Any]:
    """Everything ``legato show --json`` shows: the summary, inputs, outcome and timeline."""
    return {
        **summary_json(info),
        "args": list(info.args), "kwargs": dict(info.kwargs), "output": info.output,
        "traceback": info.traceback, "children": list(info.children),
        "events": dict(info.events), "steps": [step_json(s) for s in info.steps],
    }


def step_json(step: legato.StepInfo) -> dict[str, Any]:
    """One timeline entry as JSON."""
    return {
        "position": step.position, "kind": step.kind, "name": step.name, "ok": step.ok,
        "started_at": _iso(step.started_at), "finished_at": _iso(step.finished_at),
        "duration": step.duration, "attempts": step.attempts, "summary": step.summary,
    }


def render_list(infos: Iterable[legato.WorkflowInfo]) -> None:
    """The table ``legato list`` prints."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("ID", "NAME", "STATUS", "CREATED", "DURATION", "DETAIL"):
        table.add_column(column, no_wrap=column != "DETAIL", overflow="fold")
    for info in infos:
        detail = info.error or ""
        if info.failed_step is not None:
            detail = f"{detail} (step {info.failed_step.position} {info.failed_step.name})"
        table.add_row(info.id, info.name, _status(info.status), _when(info.created_at),
                      _seconds(info.duration), detail)
    console().print(table)


def render_info(info: legato.WorkflowInfo) -> None:
    """What ``legato show`` prints: a summary, the timeline, and the error with its traceback."""
    out = console()
    out.print(Text.assemble((info.name, "bold"), "  ", info.id, "  ", _status(info.status)))
    rows: list[tuple[str, str]] = [
        ("run", info.run_id),
        ("created", _when(info.created_at)),
        ("finished", f"{_when(info.finished_at)} ({_seconds(info.duration)})"
         if info.finished_at else "-"),
        ("queue", f"{info.queue} (priority {info.priority})" if info.queue else "-"),
        ("parent", info.parent_id or "-"),
        ("children", ", ".join(info.children) or "-"),
        ("args", _short(info.args)),
        ("kwargs", _short(dict(info.kwargs))),
    ]
    if info.status == legato.Status.SUCCEEDED:
        rows.append(("output", _short(info.output)))
    for label, value in rows:
        out.print(Text.assemble((f"  {label:<9}", "dim"), value))
    if "progress" in info.events:
        value = info.events["progress"]
        shown = progress_bar(value) or Text(_short(value))
        row = Table.grid()
        row.add_row(Text("  progress ", style="dim"), shown)
        out.print(row)
    out.print(timeline_tree(info))
    if info.error is not None:
        where = ("" if info.failed_step is None else
                 f" (at step {info.failed_step.position} {info.failed_step.name})")
        out.print(Text(f"error: {info.error}{where}", style="bold red"))
        if info.traceback:
            # plain echo: a traceback must not be re-wrapped or styled
            click.echo(info.traceback.rstrip())


def progress_bar(value: Any, *, width: int = _BAR_WIDTH) -> Table | None:
    """A ``"progress"`` event's value as a bar and its text (``━━━━╺━━━  3/10 fetching``).

    ``None`` when the value doesn't follow the convention (see ``legato.progress``).
    """
    progress = legato.Progress.read(value)
    if progress is None:
        return None
    bar = ProgressBar(total=progress.total, completed=min(progress.done, progress.total),
                      width=width, complete_style="green", finished_style="bold green")
    row = Table.grid(padding=(0, 2))
    row.add_row(bar, Text(progress.text))
    return row


def render_events(events: Mapping[str, Any]) -> None:
    """The table ``legato events`` prints: each event's key and latest value."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("KEY", no_wrap=True)
    table.add_column("VALUE", overflow="fold")
    for key, value in events.items():
        table.add_row(key, _short(value))
    console().print(table)


def timeline_tree(info: legato.WorkflowInfo) -> Tree:
    """The steps as a tree: a position nests under its prefix (``3.1.2`` under ``3.1`` under ``3``).

    A prefix with no checkpoint of its own is a branch (a task of
    ``asyncio.gather``, a branch of ``parallel``) and shows as one.
    """
    root = Tree(Text.assemble(("timeline", "bold"), f" ({len(info.steps)} checkpoints)"))
    nodes: dict[str, Tree] = {}
    for step in sorted(info.steps, key=lambda s: _key(s.position)):
        parent = _node(root, nodes, step.parent)
        nodes[step.position] = parent.add(_step_label(step))
    return root


def _node(root: Tree, nodes: dict[str, Tree], position: str | None) -> Tree:
    if position is None:
        return root
    if position not in nodes:
        head, _, _ = position.rpartition(".")
        parent = _node(root, nodes, head or None)
        nodes[position] = parent.add(Text.assemble((position, "bold"), ("  branch", "dim")))
    return nodes[position]


def _step_label(step: legato.StepInfo) -> Text:
    mark = ("✓", "green") if step.ok else ("✗", "bold red")
    label = Text.assemble((step.position, "bold"), "  ", mark, " ", (step.kind, "cyan"))
    if step.name:
        label.append(f" {step.name}")
    label.append(f"  {_seconds(step.duration)}", style="dim")
    if step.attempts > 1:
        label.append(f"  {step.attempts} attempts", style="yellow")
    if step.summary:
        label.append(f"  → {step.summary}")
    return label


def _key(position: str) -> list[int]:
    return [int(p) for p in position.split(".")]


def _status(status: legato.Status) -> Text:
    return Text(status.value, style=_STATUS_STYLE.get(status.value, ""))


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()


def _when(when: datetime | None) -> str:
    return "-" if when is None else when.strftime("%Y-%m-%d %H:%M:%S")


def _seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _short(value: Any) -> str:
    return _SHORT.repr(value)
