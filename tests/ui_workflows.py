"""Workflows for the dashboard tests, on top of ``inspection_workflows.populate``.

``populate_all(store)`` leaves one workflow in every status but running
(see ``inspection_workflows``) plus ``fanout-1`` (succeeded: three
concurrent branches, all started before any finished) and ``progress-1``
(waiting for the signal ``go``, having published progress 3/10).
``Running`` keeps ``blocked-1`` running in this process until it is closed.
Names start with ``ui.``: names are global in a process.
"""

from __future__ import annotations

import asyncio
from typing import Any

import legato
from inspection_workflows import populate
from polling import eventually

_arrived: dict[str, int] = {}
_all_in: dict[str, asyncio.Event] = {}
_release: dict[str, asyncio.Event] = {}
BRANCHES = 3


@legato.step
async def leg(run: str, which: str) -> str:
    """One branch's step: it returns only once every branch has started (a barrier)."""
    _arrived[run] = _arrived.get(run, 0) + 1
    gate = _all_in.setdefault(run, asyncio.Event())
    if _arrived[run] == BRANCHES:
        gate.set()
    await gate.wait()
    return f"{which} done"


@legato.workflow(name="ui.fanout")
async def fanout(run: str) -> list[str]:
    return list(await asyncio.gather(leg(run, "flights"), leg(run, "hotels"), leg(run, "weather")))


@legato.workflow(name="ui.progress")
async def progressing(total: int) -> Any:
    await legato.set_event("progress", {"done": 3, "total": total, "message": "fetching"})
    return await legato.wait_for_signal("go")


@legato.step
async def hold(key: str) -> str:
    await _release.setdefault(key, asyncio.Event()).wait()
    return "released"


@legato.workflow(name="ui.blocked")
async def blocked(key: str) -> str:
    return await hold(key)


async def populate_all(store: str) -> None:
    """Every status but running (see the module docstring)."""
    await populate(store)
    _arrived.clear()
    _all_in.clear()
    async with legato.Runtime(store, suspend_after=0) as rt:
        fan = await rt.start(fanout, "fan", id="fanout-1")
        assert await fan.result() == ["flights done", "hotels done", "weather done"]
        prog = await rt.start(progressing, 10, id="progress-1")
        await eventually(lambda: _status_is(prog, "waiting"))


class Running:
    """A worker in this process, holding ``blocked-1`` in ``running`` until closed.

    It also runs the other workflows whose code this process has (a cancelled
    or signalled ``wait-1`` ends here).
    """

    def __init__(self, store: str) -> None:
        self.rt = legato.Runtime(store, suspend_after=0)

    async def __aenter__(self) -> legato.Runtime:
        await self.rt.__aenter__()
        _release["blocked"] = asyncio.Event()
        handle = await self.rt.start(blocked, "blocked", id="blocked-1")
        await eventually(lambda: _status_is(handle, "running"))
        return self.rt

    async def __aexit__(self, *exc: object) -> None:
        _release["blocked"].set()
        try:
            await self.rt.handle("blocked-1").result(timeout=10)
        finally:
            await self.rt.__aexit__(None, None, None)


async def _status_is(handle: legato.WorkflowHandle[Any], status: str) -> bool:
    return await handle.status() == status
