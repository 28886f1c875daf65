"""Graph overhead per node beside the asyncio and durable baselines, measured in the same run.

The graph: 1,000 trivial nodes, fanning out 1 -> 998 -> 1 (a root, 998
independent middle nodes, a sink that gets the mapping of all 998 outputs).

(a) outside a workflow: ``Graph.invoke`` per node against the same shape
    written by hand with ``asyncio.gather`` (await the root, gather the 998,
    call the sink on a dict of their outputs). Target (issue 7): ratio ≤ 3.
(b) inside a workflow (SQLite): every node is a durable step; per node
    against a workflow doing the same with ``@legato.step`` calls and
    ``asyncio.gather`` (the durable step cost). Target: as close as the
    engine allows (shown, with the ratio).
(c) building and compiling the graph, per node (for information).

Run with ``make bench`` (or ``python bench/bench_compose.py``).
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

import legato

NODES = 1000
MIDDLE = NODES - 2
ROUNDS = 7
TARGET_PLAIN = 3.0


async def node(x: Any) -> int:
    return 1


async def sink(deps: dict[str, int]) -> int:
    return len(deps)


def fan_graph() -> legato.Graph:
    graph = legato.Graph("fan").add_node("root", node).add_node("sink", sink)
    for i in range(MIDDLE):
        graph.add_node(f"m{i}", node).add_edge("root", f"m{i}").add_edge(f"m{i}", "sink")
    return graph.compile()


async def by_hand(x: Any) -> int:
    """The same DAG with plain asyncio: what a user would write without Graph."""
    root = await node(x)
    values = await asyncio.gather(*[node(root) for _ in range(MIDDLE)])
    return await sink({f"m{i}": v for i, v in enumerate(values)})


async def _best(fn: Callable[[], Awaitable[Any]], calls: int) -> float:
    gc.collect()
    start = time.perf_counter()
    for _ in range(calls):
        await fn()
    return (time.perf_counter() - start) / calls


async def plain_us() -> tuple[float, float, float]:
    """(graph µs/node, by-hand µs/node, build+compile µs/node), best of ROUNDS."""
    graph = fan_graph()
    assert await graph.invoke(0) == MIDDLE == await by_hand(0)
    ours, theirs, builds = [], [], []
    for _ in range(ROUNDS):  # interleaved: robust to a noisy machine
        theirs.append(await _best(lambda: by_hand(0), 10))
        ours.append(await _best(lambda: graph.invoke(0), 10))
        start = time.perf_counter()
        fan_graph()
        builds.append(time.perf_counter() - start)
    return (min(ours) / NODES * 1e6, min(theirs) / NODES * 1e6, min(builds) / NODES * 1e6)


@legato.step
async def durable_node(x: Any) -> int:
    return 1


@legato.step
async def durable_sink(deps: dict[str, int]) -> int:
    return len(deps)


GRAPH = fan_graph()  # built once, like the steps of the baseline


@legato.workflow(name="bench_compose_graph")
async def graph_wf(tag: int) -> int:
    out: int = await GRAPH.invoke(tag)
    return out


@legato.workflow(name="bench_compose_steps")
async def steps_wf(tag: int) -> int:
    root = await durable_node(tag)
    values = await asyncio.gather(*[durable_node(root) for _ in range(MIDDLE)])
    return await durable_sink({f"m{i}": v for i, v in enumerate(values)})


async def durable_us(path: Path) -> tuple[float, float]:
    """(graph µs/node, durable steps µs/node) inside workflows, best of a few rounds."""
    async with legato.Runtime(str(path)) as rt:
        await rt.run(graph_wf, 0, id="warm-graph")
        await rt.run(steps_wf, 0, id="warm-steps")
        ours, theirs = [], []
        for r in range(5):
            gc.collect()
            start = time.perf_counter()
            await rt.run(steps_wf, r, id=f"steps-{r}")
            theirs.append(time.perf_counter() - start)
            gc.collect()
            start = time.perf_counter()
            await rt.run(graph_wf, r, id=f"graph-{r}")
            ours.append(time.perf_counter() - start)
    return min(ours) / NODES * 1e6, min(theirs) / NODES * 1e6


def run() -> list[dict[str, Any]]:
    """Measure (a), (b) and (c); one row per figure."""
    graph_us, hand_us, build_us = asyncio.run(plain_us())
    with tempfile.TemporaryDirectory() as tmp:
        wf_us, step_us = asyncio.run(durable_us(Path(tmp) / "compose.db"))
    plain_ratio = graph_us / hand_us
    return [
        {"bench": f"(a) Graph.invoke, 1 → {MIDDLE} → 1, outside workflows", "value": graph_us,
         "unit": "µs/node", "baseline": hand_us, "baseline_name": "same DAG by hand, gather",
         "ratio": plain_ratio, "target": f"ratio ≤ {TARGET_PLAIN:g}",
         "ok": plain_ratio <= TARGET_PLAIN},
        {"bench": f"(b) Graph.invoke, 1 → {MIDDLE} → 1, in a workflow", "value": wf_us,
         "unit": "µs/node", "baseline": step_us, "baseline_name": "@step + gather, same DAG",
         "ratio": wf_us / step_us, "target": "≈ durable step cost", "ok": wf_us / step_us <= 1.5},
        {"bench": "(c) build + compile the graph", "value": build_us, "unit": "µs/node",
         "baseline": None, "baseline_name": "", "ratio": None, "target": "-", "ok": True},
    ]


if __name__ == "__main__":
    from table import print_table

    print_table("composition: Graph vs asyncio and durable steps", run())
