"""A worker process for the compose crash test: run one graph workflow until SIGKILLed.

Usage: compose_child.py DB WORKFLOW_ID

Every node body appends its name to the file named by ``LEGATO_TEST_LOG`` and
prints it; the node named by ``LEGATO_TEST_HANG_AT`` hangs (until the kill).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import legato


async def _body(name: str, value: object) -> str:
    with Path(os.environ["LEGATO_TEST_LOG"]).open("a") as log:  # noqa: ASYNC230
        log.write(name + "\n")
    print(name, flush=True)  # the test waits for this line
    if os.environ.get("LEGATO_TEST_HANG_AT") == name:
        await asyncio.Event().wait()
    return f"{name}({value})"


def node(name: str) -> legato.Runnable[object, str]:
    async def run(value: object) -> str:
        return await _body(name, value)

    return legato.runnable(run, name=name)


def six_nodes() -> legato.Graph:
    """A -> B, C, D; B + C + D -> E; D + E -> F."""
    graph = legato.Graph("six")
    for name in "ABCDEF":
        graph.add_node(name, node(name))
    for src, dst in ["AB", "AC", "AD", "BE", "CE", "DE", "DF", "EF"]:
        graph.add_edge(src, dst)
    return graph


@legato.workflow(name="compose_six_nodes")
async def six_nodes_wf() -> str:
    result: str = await six_nodes().invoke("in")
    return result


async def main(db: str, workflow_id: str) -> None:
    async with legato.Runtime(db) as rt:
        await rt.start(six_nodes_wf, id=workflow_id)
        print("started", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:3]))
