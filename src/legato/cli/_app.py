"""The ``legato`` group, the options every command shares, and how errors become exit codes."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar

import click

import legato
from legato.store import SqliteStore, Store, open_store

__all__ = [
    "NOT_FOUND", "USAGE", "Failure", "app", "client", "existing_store", "json_option", "main",
    "run", "store_option", "ui", "version",
]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

NOT_FOUND = 1  # also: a failed workflow, an unreachable store
USAGE = 2


class Failure(click.ClickException):
    """Exit status 1 with a message on stderr: not found, failed, unreachable."""

    exit_code = NOT_FOUND


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(legato.__version__, "--version", prog_name="legato")
def app() -> None:
    """Operate legato from the terminal: inspect, signal, cancel, resume, run workers.

    Every command takes --store URL (or $LEGATO_STORE; default legato.db).
    """


def store_option(fn: F) -> F:
    """``--store URL``, from ``$LEGATO_STORE`` when not given; default ``legato.db``."""
    return click.option(
        "--store", metavar="URL", envvar="LEGATO_STORE", default="legato.db",
        show_default=True,
        help="sqlite:///path.db, a file path, or postgresql://... (env LEGATO_STORE)")(fn)


def json_option(fn: F) -> F:
    """``--json``: machine-readable output on stdout."""
    return click.option("--json", "as_json", is_flag=True,
                        help="print JSON instead of a table")(fn)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one command's coroutine, turning legato's errors into exit codes.

    >>> run(show_workflow("legato.db", "order-42"))  # doctest: +SKIP
    """
    try:
        return asyncio.run(coro)
    except legato.WorkflowNotFound as exc:
        raise Failure(str(exc)) from None
    except legato.LegatoError as exc:
        raise Failure(str(exc)) from None


async def client(store: str, body: Callable[[legato.Runtime], Awaitable[T]]) -> T:
    """``body(rt)`` with a client Runtime (no worker) on ``store``.

    A SQLite file that does not exist is an error, not a new empty store.
    """
    async with legato.Runtime(existing_store(store), worker=False) as rt:
        return await body(rt)


def existing_store(store: str) -> Store:
    """The store ``store`` names; a SQLite file that does not exist is an error, not a new store."""
    try:
        opened = open_store(store)
    except (ValueError, ImportError) as exc:
        raise click.UsageError(str(exc)) from None
    if isinstance(opened, SqliteStore) and not opened.path.exists():
        raise Failure(f"no legato store at {opened.path}; pass --store URL or set LEGATO_STORE")
    return opened


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit status (0 ok, 1 not found or failed, 2 usage).

    >>> main(["show", "order-42", "--store", "legato.db"])  # doctest: +SKIP
    0
    """
    try:
        # outside standalone mode Click returns a command's `Exit(code)` as the code
        code = app.main(args=list(argv) if argv is not None else None, prog_name="legato",
                        standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort:
        click.echo("Aborted!", err=True)
        return NOT_FOUND
    return code if isinstance(code, int) else 0


@app.command()
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def version(as_json: bool) -> None:
    """Print legato's version (and Python's)."""
    python = ".".join(map(str, sys.version_info[:3]))
    if as_json:
        click.echo(f'{{"legato": "{legato.__version__}", "python": "{python}"}}')
    else:
        click.echo(f"legato {legato.__version__} (Python {python})")


@app.command()
@store_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="address to listen on; anything but loopback exposes the dashboard")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="port to listen on (0: a free one)")
@click.option("--read-only", is_flag=True, help="hide and refuse signal, cancel and resume")
@click.option("--token", envvar="LEGATO_UI_TOKEN", metavar="T",
              help="writes need this token (env LEGATO_UI_TOKEN); reads stay open")
def ui(store: str, host: str, port: int, read_only: bool, token: str | None) -> None:
    """Serve the web dashboard: executions, timelines, signal/cancel/resume, /metrics.

    It binds 127.0.0.1 by default. Open the URL it prints; with --token the
    URL carries the token once and the browser keeps it in a cookie.

    \b
    Example:
        legato ui --store legato.db
        LEGATO_UI_TOKEN=s3cret legato ui --store postgresql://app@db/prod --host 0.0.0.0
    """
    try:
        from legato import ui as dashboard
    except ImportError as exc:
        raise Failure(f"the dashboard needs the ui extra ({exc}): "
                      "pip install 'legato[ui]'") from None
    opened = existing_store(store)
    if not dashboard.is_loopback(host) and token is None and not read_only:
        click.echo(f"legato ui: warning: listening on {host} without --token or --read-only: "
                   "anyone who reaches it can cancel workflows", err=True)
    settings = dashboard.Settings(store, read_only=read_only, token=token)

    def ready(url: str) -> None:
        mode = "read-only" if read_only else "writes need the token" if token else "read-write"
        click.echo(f"legato ui: serving {opened.url} ({mode}) on {url}")

    try:
        dashboard.serve(settings, host, port, ready=ready)
    except KeyboardInterrupt:  # Ctrl-C: uvicorn stopped cleanly, then passed it on
        click.echo("legato ui: stopped")
    except OSError as exc:
        raise Failure(f"can't listen on {host}:{port} ({exc}); pick another --port") from None
    except legato.LegatoError as exc:
        raise Failure(str(exc)) from None
