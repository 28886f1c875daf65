"""The ``legato`` command: ``legato worker MODULE [MODULE...] --store URL``.

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

import argparse
import asyncio
import importlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from types import ModuleType

from ._errors import LegatoError
from .durable._queue import Queue
from .durable._runtime import Runtime
from .durable._workflow import registered_names
from .store import Store, open_store

__all__ = ["main"]

log = logging.getLogger("legato.cli")

_USAGE_ERROR = 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0: drained after SIGTERM/SIGINT).

    >>> main(["worker", "myapp.workflows", "--store", "sqlite:///legato.db"])  # doctest: +SKIP
    """
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="legato: %(message)s")
    try:
        modules = _import(args.modules)
        store = open_store(args.store)
    except (ImportError, ValueError) as exc:
        print(f"legato worker: {exc}", file=sys.stderr)
        return _USAGE_ERROR
    queues = [_find_queue(name, modules) for name in args.queue]
    try:
        asyncio.run(serve(store, queues, concurrency=args.concurrency, lease=args.lease))
    except LegatoError as exc:
        print(f"legato worker: {exc}", file=sys.stderr)
        return 1
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="legato", description="Durable workflows for asyncio.")
    commands = parser.add_subparsers(dest="command", required=True)
    worker = commands.add_parser(
        "worker", help="run workflows from a store until SIGTERM",
        description="Import MODULEs (registering their workflows) and run their workflows "
                    "from the store until SIGTERM or SIGINT, then drain.")
    worker.add_argument("modules", nargs="+", metavar="MODULE",
                        help="a module to import, e.g. myapp.workflows")
    worker.add_argument("--store", required=True, metavar="URL",
                        help="sqlite:///path.db, a file path, or postgresql://...")
    worker.add_argument("--concurrency", type=_positive_int, default=1000, metavar="N",
                        help="workflows run at once (default 1000)")
    worker.add_argument("--queue", action="append", default=[], metavar="NAME",
                        help="also run this queue's workflows (repeatable)")
    worker.add_argument("--lease", type=float, default=1.5, metavar="SECONDS",
                        help="lease length; a dead worker's workflows move after it (1.5)")
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


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


def _find_queue(name: str, modules: Sequence[ModuleType]) -> Queue:
    for module in modules:
        for value in vars(module).values():
            if isinstance(value, Queue) and value.name == name:
                return value
    return Queue(name)


async def serve(store: Store, queues: Sequence[Queue] = (), *, concurrency: int = 1000,
                lease: float = 1.5) -> None:
    """Serve ``store`` until SIGTERM or SIGINT, then drain (the Runtime releases its leases).

    >>> asyncio.run(serve(open_store("legato.db")))  # doctest: +SKIP
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with Runtime(store, concurrency=concurrency, lease=lease, queues=queues) as rt:
        log.info("worker %s serving %s on %r (pid %d)", rt.engine.owner,
                 ", ".join(sorted(registered_names())) or "no workflows", store, os.getpid())
        await stop.wait()
        log.info("draining: releasing the leases of running workflows")
    log.info("drained; exiting")
