"""A process that runs ``boundary_workflows.trip`` and dies by SIGKILL at its Nth commit.

Usage: boundary_child.py STORE_URL CRASH_AT   (CRASH_AT 0: never; prints the commit count)

Every write the worker makes for a workflow (a step record, a signal taken,
a child created, a finish, ...) is a commit point; the process kills itself
the moment the CRASH_AT-th one is durable, as a power cut or OOM would.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import boundary_workflows
import legato
from legato.store import open_store

_WRITES = ("append", "take_signal", "untake_signal", "create", "finish", "suspend",
           "set_event", "send_signal", "continue_as_new")


def count_commits(store: Any, crash_at: int) -> list[int]:
    commits = [0]

    def landed() -> None:
        commits[0] += 1
        if commits[0] == crash_at:
            os.kill(os.getpid(), signal.SIGKILL)

    for name in _WRITES:
        write = getattr(store, name)
        if name == "append":  # returns a future
            def append(*args: Any, _write: Any = write) -> Any:
                future = _write(*args)
                future.add_done_callback(lambda f: landed() if not f.exception() else None)
                return future
            setattr(store, name, append)
        else:
            async def call(*args: Any, _write: Any = write, **kwargs: Any) -> Any:
                result = await _write(*args, **kwargs)
                landed()
                return result
            setattr(store, name, call)
    return commits


async def main(url: str, crash_at: int) -> None:
    store = open_store(url)
    commits = count_commits(store, crash_at)
    async with legato.Runtime(store, lease=0.2) as rt:
        await rt.start(boundary_workflows.trip, id="trip")
        await rt.signal("trip", "go", "yes")
        result = await rt.handle("trip").result(timeout=30)
    print("result", result, flush=True)
    print("commits", commits[0], flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
