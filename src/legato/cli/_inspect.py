"""Read commands: ``legato list``, ``legato show ID``, ``legato events ID``."""

from __future__ import annotations

from datetime import datetime

import click

import legato

from ._app import NOT_FOUND, app, client, json_option, run, store_option
from ._render import echo_json, info_json, render_events, render_info, render_list, summary_json
from ._when import parse_when

__all__ = ["events", "list_", "show"]

_STATUSES = [s.value for s in legato.Status]


@app.command("list")
@store_option
@json_option
@click.option("--status", type=click.Choice(_STATUSES), help="only workflows in this status")
@click.option("--name", help="only runs of this workflow")
@click.option("--queue", help="only workflows enqueued on this queue")
@click.option("--parent", metavar="ID", help="only the children of this workflow")
@click.option("--since", metavar="WHEN",
              help="created at or after: an ISO time, epoch seconds, or an age like 1h30m")
@click.option("--until", metavar="WHEN", help="created before (same forms as --since)")
@click.option("--limit", type=click.IntRange(min=0), default=100, show_default=True)
@click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--oldest", is_flag=True, help="oldest first (default: newest first)")
def list_(store: str, as_json: bool, status: str | None, name: str | None, queue: str | None,
          parent: str | None, since: str | None, until: str | None, limit: int, offset: int,
          oldest: bool) -> None:
    """List workflows, newest first; failed ones show their error and failing step."""
    start, end = _when("--since", since), _when("--until", until)

    async def body(rt: legato.Runtime) -> list[legato.WorkflowInfo]:
        return await rt.list(status, name, queue=queue, parent=parent, since=start, until=end,
                             limit=limit, offset=offset, order="oldest" if oldest else "newest")

    infos = run(client(store, body))
    if as_json:
        echo_json([summary_json(i) for i in infos])
    else:
        render_list(infos)


@app.command()
@click.argument("workflow_id", metavar="ID")
@store_option
@json_option
def show(workflow_id: str, store: str, as_json: bool) -> None:
    """Show one workflow: summary, step timeline (branches nested), error with traceback.

    Exits 1 when the workflow failed (or does not exist).
    """
    info = run(client(store, lambda rt: rt.get(workflow_id)))
    if as_json:
        echo_json(info_json(info))
    else:
        render_info(info)
    if info.status == legato.Status.FAILED:
        raise click.exceptions.Exit(NOT_FOUND)


@app.command()
@click.argument("workflow_id", metavar="ID")
@store_option
@json_option
def events(workflow_id: str, store: str, as_json: bool) -> None:
    """Show the events a workflow published (legato.set_event): each key's latest value."""
    info = run(client(store, lambda rt: rt.get(workflow_id)))
    if as_json:
        echo_json(dict(info.events))
    else:
        render_events(info.events)


def _when(option: str, text: str | None) -> datetime | None:
    try:
        return parse_when(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None
