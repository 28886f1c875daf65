"""Commands that change a workflow: ``legato signal``, ``legato cancel``, ``legato resume``."""

from __future__ import annotations

import json
from typing import Any

import click

import legato

from ._app import app, client, run, store_option

__all__ = ["cancel", "resume", "signal"]


@app.command()
@click.argument("workflow_id", metavar="ID")
@click.argument("name")
@click.argument("payload", metavar="[JSON]", required=False)
@store_option
def signal(workflow_id: str, name: str, payload: str | None, store: str) -> None:
    """Send the signal NAME to a workflow, with an optional JSON payload.

    \b
    Example:
        legato signal expense-7 approval '{"approved": true, "by": "ana"}'
    """
    value = _json(payload)

    async def body(rt: legato.Runtime) -> None:
        await rt.signal(workflow_id, name, value)

    run(client(store, body))
    click.echo(f"signal {name!r} sent to {workflow_id}")


@app.command()
@click.argument("workflow_id", metavar="ID")
@store_option
def cancel(workflow_id: str, store: str) -> None:
    """Cancel a workflow and its children (a finished one is left as it is)."""

    async def body(rt: legato.Runtime) -> legato.Status:
        await rt.cancel(workflow_id)
        return await rt.handle(workflow_id).status()

    status = run(client(store, body))
    click.echo(f"cancel requested for {workflow_id} (now {status.value})")


@app.command()
@click.argument("workflow_id", metavar="ID")
@store_option
def resume(workflow_id: str, store: str) -> None:
    """Run a failed or cancelled workflow again from its last checkpoint.

    A queued or delayed one starts now, past its queue; a succeeded one is left as it is.
    """

    async def body(rt: legato.Runtime) -> str:
        return str(await (await rt.resume(workflow_id)).status())

    status = run(client(store, body))
    if status == "succeeded":
        click.echo(f"{workflow_id} has succeeded already: nothing to resume")
    else:
        click.echo(f"{workflow_id} resumed: pending until a worker takes it")


def _json(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON ({exc}); quote it, e.g. '{{\"ok\": true}}'",
                                 param_hint="JSON") from None
