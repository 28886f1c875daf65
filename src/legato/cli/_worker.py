"""``legato worker MODULE [MODULE...]``: serve a store's workflows until SIGTERM, then drain.

A worker process imports the modules that define workflows (registering
them), serves the store until SIGTERM or SIGINT, then drains: it stops
claiming, stops its running workflows at their current await and gives their
leases back, so another worker resumes them from their last checkpoint at
once. Workflows whose code it lacks stay for a worker that has it.

Example::

    $ legato worker myapp.workflows --store postgresql://app@db/prod --concurrency 50
    $ python -m legato worker myapp.workflows --store sqlite:///legato.db --queue emails

``--queue NAME`` runs that queue's workflows: a ``legato.Queue`` of that name
found at the top level of a given module brings its limits; otherwise the
queue runs without limits of its own.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from types import ModuleType

import click

import legato
from legato.store import Store, open_store

from ._app import app, run, store_option

__all__ = ["serve", "worker"]

log = logging.getLogger("legato.cli")


@app.command()
@click.argument("modules", nargs=-1, required=True, metavar="MODULE...")
@store_option
@click.option("--concurrency", type=click.IntRange(min=1), default=1000, metavar="N",
              show_default=True, help="workflows run at once")
@click.option("--queue", "queues", multiple=True, metavar="NAME",
              help="also run this queue's workflows (repeatable)")
@click.option("--lease", type=click.FloatRange(min=0, min_open=True), default=1.5,
              metavar="SECONDS", show_default=True,
              help="lease length; a dead worker's workflows move after it")
@click.option("--stall-limit", type=click.FloatRange(min=0, min_open=True), default=60.0,
              metavar="SECONDS", show_default=True,
              help="how long the event loop may be blocked before other workers take over")
def worker(modules: tuple[str, ...], store: str, concurrency: int, queues: tuple[str, ...],
           lease: float, stall_limit: float) -> None:
    """Import MODULEs (registering their workflows) and run their workflows from the
    store until SIGTERM or SIGINT, then drain.

    MODULE is a module to import, e.g. myapp.workflows.
    """
    logging.basicConfig(level=logging.INFO, format="legato: %(message)s")
    try:
        imported = _import(modules)
        opened = open_store(store)
    except (ImportError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None
    run(serve(opened, [_find_queue(name, imported) for name in queues],
              concurrency=concurrency, lease=lease, stall_limit=stall_limit))


def _import(names: Sequence[str]) -> list[ModuleType]:
    """Import each module, as ``python -m`` would find it (the current directory first)."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    modules = []
    for name in names:
        try:
            modules.append(importlib.import_module(name))
        except ImportError as exc:
            raise ImportError(
                f"can't import workflow module {name!r}: {exc}; check the name and that "
                "its package is on PYTHONPATH (the current directory is)") from exc
    return modules


def _find_queue(name: str, modules: Sequence[ModuleType]) -> legato.Queue:
    for module in modules:
        for value in vars(module).values():
            if isinstance(value, legato.Queue) and value.name == name:
                return value
    return legato.Queue(name)


async def serve(store: Store, queues: Sequence[legato.Queue] = (), *, concurrency: int = 1000,
                lease: float = 1.5, stall_limit: float = 60.0) -> None:
    """Serve ``store`` until SIGTERM or SIGINT, then drain (the Runtime releases its leases).

    >>> asyncio.run(serve(open_store("legato.db")))  # doctest: +SKIP
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with legato.Runtime(store, concurrency=concurrency, lease=lease,
                              stall_limit=stall_limit, queues=queues) as rt:
        log.info("worker %s serving %s on %r (pid %d)", rt.worker_id,
                 ", ".join(legato.registered_workflows()) or "no workflows", store, os.getpid())
        await stop.wait()
        log.info("draining: releasing the leases of running workflows")
    log.info("drained; exiting")
