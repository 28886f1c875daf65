"""``legato export ID`` and ``legato replay``: keep histories, check today's code against them.

Example::

    $ legato export order-42 --store legato.db > tests/golden/order-42.json
    $ legato replay --app myapp.workflows --file tests/golden/order-42.json
    $ legato replay --app myapp.workflows --store postgresql://... --all --name process_order

``replay`` runs the code of the workflows that ``--app`` modules define against
each history, without running any step, and prints, per history, ``ok`` or
the first position where the code diverges and the ``legato.patched`` guard
that fixes it. It exits 1 when one diverges: a check to run before a deploy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import click

import legato
from legato.testing import History, ReplayReport, load_history, replay

from ._app import NOT_FOUND, Failure, app, client, run, store_option
from ._worker import _import

__all__ = ["export", "replay_command"]

_PAGE = 100
F = TypeVar("F", bound=Callable[..., Any])


def _app_option(required: bool) -> Callable[[F], F]:
    return click.option(
        "--app", "modules", multiple=True, required=required, metavar="MODULE",
        help="import this module first: the one that defines the workflows (repeatable)")


def _load(modules: Sequence[str]) -> list[ModuleType]:
    try:
        return _import(modules)
    except ImportError as exc:
        raise click.UsageError(str(exc)) from None


@app.command()
@click.argument("workflow_id", metavar="ID")
@store_option
@_app_option(required=False)
def export(workflow_id: str, store: str, modules: tuple[str, ...]) -> None:
    """Print one workflow's history as JSON: its name, input, outcome and records.

    Keep the file as a golden history and check new code against it with
    `legato replay --file`. Pass --app when the inputs hold your own classes.
    """
    _load(modules)
    history = run(client(store, lambda rt: History.from_runtime(rt, workflow_id)))
    click.echo(history.dumps(), nl=False)


@app.command("replay")
@_app_option(required=True)
@store_option
@click.option("--id", "ids", multiple=True, metavar="ID", help="a stored workflow (repeatable)")
@click.option("--all", "every", is_flag=True, help="every stored workflow named --name")
@click.option("--name", metavar="NAME", help="with --all: the workflow name")
@click.option("--file", "files", multiple=True, metavar="PATH",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="a file `legato export` wrote (repeatable)")
def replay_command(modules: tuple[str, ...], store: str, ids: tuple[str, ...], every: bool,
                   name: str | None, files: tuple[Path, ...]) -> None:
    """Replay histories with today's code, running no step; exit 1 if one diverges.

    Histories come from the store (--id ID, or --all --name NAME) or from
    files (--file). The workflows' code comes from the --app modules.
    """
    if every != (name is not None):
        raise click.UsageError("--all and --name go together: --all --name NAME")
    if not (ids or every or files):
        raise click.UsageError("say which histories: --id ID, --all --name NAME, or --file PATH")
    workflows = _workflows(_load(modules))
    histories = [load_history(f) for f in files]
    if ids or every:
        histories += run(client(store, lambda rt: _stored(rt, ids, name)))
    if not histories:
        click.echo(f"no stored workflow is named {name!r}")
        return
    reports = run(_replay_all(workflows, histories, modules))
    for report in reports:
        _echo(report)
    failed = sum(not r.ok for r in reports)
    click.echo(f"{len(reports) - failed} of {len(reports)} histories replay")
    if failed:
        raise click.exceptions.Exit(NOT_FOUND)


def _workflows(modules: Sequence[ModuleType]) -> dict[str, legato.Workflow[Any, Any]]:
    found: dict[str, legato.Workflow[Any, Any]] = {}
    for module in modules:
        for value in vars(module).values():
            if isinstance(value, legato.Workflow):
                found.setdefault(value.name, value)
    return found


async def _stored(rt: legato.Runtime, ids: Sequence[str], name: str | None) -> list[History]:
    chosen = list(ids)
    if name is not None:
        while True:
            page = await rt.list(name=name, limit=_PAGE, offset=len(chosen) - len(ids),
                                 order="oldest")
            chosen += [info.id for info in page]
            if len(page) < _PAGE:
                break
    return [await History.from_runtime(rt, workflow_id) for workflow_id in chosen]


async def _replay_all(workflows: dict[str, legato.Workflow[Any, Any]],
                      histories: Sequence[History], modules: Sequence[str]
                      ) -> list[ReplayReport]:
    reports = []
    for history in histories:
        wf = workflows.get(history.name)
        if wf is None:
            raise Failure(f"no workflow named {history.name!r} (history {history.id!r}) in "
                          f"{', '.join(modules)}; pass the module that defines it with --app")
        reports.append(await replay(wf, history, check=False))
    return reports


def _echo(report: ReplayReport) -> None:
    if report.ok:
        state = "ok" if report.complete else f"ok so far (ends before {report.next_call})"
        click.echo(f"{state:<8} {report.history}  ({report.records} records)")
        return
    click.secho(f"FAILED   {report.history}  ({report.records} records)", fg="red")
    for line in str(report).splitlines():
        click.echo(f"    {line}")
