"""Chains, graphs and pools inside durable workflows: every step and node is a durable step.

The restart pattern (as in tests/test_flow_in_workflows.py): a first runtime
runs the workflow until it blocks in ``gate``, then is left (its lease is
given back); a second runtime on the same store opens the gate and replays
the workflow. ``calls`` counts how often each body really ran, so "not run
again" is an exact assertion.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from typing import Any

import pytest

import legato

calls: Counter[str] = Counter()
entered: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
opened: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls.clear()
    entered.clear()
    opened.clear()


@legato.step
async def gate(name: str) -> str:
    calls[f"gate:{name}"] += 1
    entered[name].set()
    await opened[name].wait()
    return name


async def inc(x: int) -> int:
    calls[f"inc:{x}"] += 1
    return x + 1


async def double(x: int) -> int:
    calls[f"double:{x}"] += 1
    return x * 2


async def broken(x: int) -> int:
    calls["broken"] += 1
    raise ValueError(f"broken at {x}")


async def join(deps: dict[str, int]) -> int:
    calls["join"] += 1
    return sum(deps.values())


def diamond(b: Any = double) -> legato.Graph:
    graph = legato.Graph("diamond")
    graph.add_node("A", inc).add_node("B", b).add_node("C", inc).add_node("D", join)
    graph.add_edge("A", "B").add_edge("A", "C").add_edge("B", "D").add_edge("C", "D")
    return graph


def steps(info: legato.WorkflowInfo) -> list[tuple[str, str, str]]:
    return [(s.position, s.kind, s.name) for s in info.steps]


async def run_then_restart(db: str, wf: Any, id: str, *, clock: Any = None) -> tuple[Any, Any]:
    async with legato.Runtime(db, clock=clock) as rt:
        await rt.start(wf, id=id)
        await asyncio.wait_for(entered[id].wait(), 5)
    first = Counter(calls)
    opened[id].set()
    async with legato.Runtime(db, clock=clock) as rt:
        result = await rt.handle(id).result(timeout=5)
        info = await rt.get(id)
    return first, (result, info)


# -- chains -------------------------------------------------------------------------


@legato.workflow(name="compose_chain")
async def chain_wf() -> list[Any]:
    out = await legato.Chain([inc, double, inc]).invoke(1)
    await gate(legato.workflow_id())
    return [out, await (legato.runnable(inc) | double).invoke(out)]


async def test_chain_steps_are_durable_steps_not_run_again_on_replay(db):
    first, (result, info) = await run_then_restart(db, chain_wf, "chain")
    assert result == [5, 12]
    assert first == {"inc:1": 1, "double:2": 1, "inc:4": 1, "gate:chain": 1}
    assert calls == first + Counter({"gate:chain": 1, "inc:5": 1, "double:6": 1})
    assert steps(info) == [("1", "step", "inc"), ("2", "step", "double"), ("3", "step", "inc"),
                           ("4", "step", "gate"), ("5", "step", "inc"), ("6", "step", "double")]


@legato.workflow(name="compose_chain_memory")
async def chain_memory_wf() -> list[Any]:
    memory = legato.Memory()  # made in the body: replay rebuilds it

    async def remember(x: str, memory: legato.Memory) -> str:
        calls[f"remember:{x}"] += 1
        memory.append(x)
        memory.put("last", x)
        return f"{x}@{len(memory)}"

    chat = legato.Chain([remember], memory=memory)
    first = await chat.invoke("hello")
    await gate(legato.workflow_id())
    second = await chat.invoke("again")  # sees "hello" even though it was replayed
    return [first, second, memory.messages, memory.get("last")]


async def test_chain_memory_is_rebuilt_on_replay_without_running_steps(db):
    first, (result, _) = await run_then_restart(db, chain_memory_wf, "memory")
    assert result == ["hello@1", "again@2", ["hello", "again"], "again"]
    assert first["remember:hello"] == 1 and calls["remember:hello"] == 1


@legato.step
async def hang(x: int) -> int:
    calls["hang"] += 1
    await asyncio.Event().wait()
    return x


@legato.workflow(name="compose_chain_timeout")
async def chain_timeout_wf() -> str:
    try:
        await legato.Chain([inc, hang, double], timeout="1h").invoke(1)
    except TimeoutError as exc:
        return str(exc)
    return "finished"


async def test_chain_timeout_in_a_workflow_is_durable_and_follows_the_clock(db):
    clock = legato.VirtualClock()
    async with legato.Runtime(db, clock=clock) as rt:
        message = await rt.run(chain_timeout_wf, id="timeout")
        info = await rt.get("timeout")
    assert "did not finish within its timeout of 3600 s" in message
    assert calls == {"inc:1": 1, "hang": 1}  # double never ran
    assert ("1", "timeout", "") in steps(info)  # the decision is recorded


@legato.workflow(name="compose_chain_retries")
async def chain_retries_wf() -> int:
    async def flaky(x: int) -> int:
        calls["flaky"] += 1
        if calls["flaky"] < 3:
            raise ConnectionError("again")
        return x

    return await legato.Chain([flaky], retries=3, retry_delay="10m").invoke(7)


async def test_chain_retries_in_a_workflow_are_recorded_attempts_with_durable_waits(db):
    async with legato.Runtime(db, clock=legato.VirtualClock()) as rt:
        assert await rt.run(chain_retries_wf, id="retries") == 7
        kinds = [s.kind for s in (await rt.get("retries")).steps]
    assert calls["flaky"] == 3
    assert kinds.count("attempt") == 2 and kinds.count("sleep") == 2


# -- graphs -------------------------------------------------------------------------


@legato.workflow(name="compose_graph")
async def graph_wf() -> int:
    out: int = await diamond().invoke(1)
    await gate(legato.workflow_id())
    return out


async def test_graph_nodes_are_durable_steps_named_after_their_nodes(db):
    first, (result, info) = await run_then_restart(db, graph_wf, "graph")
    assert result == 7  # A=2, B=4, C=3, D=7
    assert first == {"inc:1": 1, "double:2": 1, "inc:2": 1, "join": 1, "gate:graph": 1}
    assert calls == first + Counter({"gate:graph": 1})  # no node ran again
    # node i of the plan records under the graph's position 1: 1.i.1
    assert steps(info) == [("1.0.1", "step", "A"), ("1.1.1", "step", "B"),
                           ("1.2.1", "step", "C"), ("1.3.1", "step", "D"), ("2", "step", "gate")]


@legato.workflow(name="compose_graph_fails")
async def graph_fails_wf() -> int:
    out: int = await diamond(broken).invoke(1)
    return out


@legato.workflow(name="compose_graph_caught")
async def graph_caught_wf() -> list[Any]:
    try:
        await diamond(broken).invoke(1)
    except legato.GraphError as err:
        await gate(legato.workflow_id())
        return [err.failed, str(err.error), err.results, list(err.skipped)]
    return []


async def test_a_failed_graph_fails_the_workflow_with_a_whole_graph_error(db):
    async with legato.Runtime(db) as rt:
        handle = await rt.start(graph_fails_wf, id="fails")
        with pytest.raises(legato.GraphError) as caught:
            await handle.result(timeout=5)
    err = caught.value  # rebuilt from the store, not a StepFailed
    assert err.failed == "B" and isinstance(err.error, ValueError)
    assert str(err.error) == "broken at 2"
    assert err.results == {"A": 2, "C": 3} and err.skipped == ("D",)


async def test_a_graph_error_is_the_same_on_replay(db):
    first, (result, _) = await run_then_restart(db, graph_caught_wf, "caught")
    assert result == ["B", "broken at 2", {"A": 2, "C": 3}, ["D"]]
    assert calls["broken"] == 1 == first["broken"]  # the failure replayed, not re-run


@legato.workflow(name="compose_nested")
async def nested_wf() -> Any:
    inner = legato.Graph("inner").add_node("x", inc).add_node("y", double).add_edge("x", "y")
    outer = legato.Graph("outer").add_node("start", inc).add_node("sub", inner)
    outer.add_node("pipe", legato.Chain([inc, double])).add_edge("start", "sub")
    outer.add_edge("start", "pipe")
    return await outer.invoke(0)


async def test_nested_graphs_and_chains_record_their_own_nodes(db):
    async with legato.Runtime(db) as rt:
        assert await rt.run(nested_wf, id="nested") == {"sub": 4, "pipe": 4}
        info = await rt.get("nested")
    assert steps(info) == [
        ("1.0.1", "step", "start"),
        ("1.1.1.0.1", "step", "x"), ("1.1.1.1.1", "step", "y"),  # the inner graph's nodes
        ("1.2.1", "step", "inc"), ("1.2.2", "step", "double"),   # the chain's steps
    ]


# -- batch and pool -----------------------------------------------------------------


@legato.workflow(name="compose_batch_pool")
async def batch_pool_wf() -> list[Any]:
    batched = await legato.Chain([inc, double]).batch([1, 2, 3], concurrency=2)
    async with legato.Pool(2) as pool:
        pooled = await pool.map(legato.step(name="pooled")(double), [10, 20, 30])
    await gate(legato.workflow_id())
    return [batched, pooled]


async def test_batch_and_pool_jobs_in_a_workflow_replay_without_running_again(db):
    first, (result, _) = await run_then_restart(db, batch_pool_wf, "bp")
    assert result == [[4, 6, 8], [20, 40, 60]]
    assert calls == first + Counter({"gate:bp": 1})
    assert first["double:10"] == 1 and first["inc:3"] == 1


# -- streaming and recovery ---------------------------------------------------------


@legato.workflow(name="compose_stream")
async def stream_wf() -> list[str]:
    async def words(text: str) -> Any:
        calls["words"] += 1
        for word in text.split():
            yield word

    chunks = [c async for c in legato.Chain([str.upper, words]).stream("a b c")]
    await gate(legato.workflow_id())
    return chunks


async def test_chain_stream_in_a_workflow_yields_the_recorded_chunks(db):
    first, (result, info) = await run_then_restart(db, stream_wf, "stream")
    assert result == ["A", "B", "C"]
    assert calls["words"] == 1 == first["words"]
    assert steps(info)[:2] == [("1", "step", "upper"), ("2", "step", "words")]


@legato.workflow(name="compose_graph_recovers")
async def graph_recovers_wf() -> int:
    def fallback(error: Exception, node: str, value: Any) -> int:
        calls[f"fallback:{node}"] += 1
        return -100

    graph = diamond(broken)
    graph.on_error = fallback
    out: int = await graph.invoke(1)
    await gate(legato.workflow_id())
    return out


async def test_graph_on_error_in_a_workflow_recovers_the_same_way_on_replay(db):
    first, (result, _) = await run_then_restart(db, graph_recovers_wf, "recovers")
    assert result == -100 + 3
    assert first["broken"] == 1 == calls["broken"]  # the recorded error is replayed
    assert calls["fallback:B"] == 2  # workflow code: it runs again on replay


class Triple(legato.Runnable[int, int]):
    name = "triple"

    async def invoke(self, input: int) -> int:
        calls["triple"] += 1
        return input * 3


def minus_one(x: int) -> int:  # a plain def: a step run in a thread
    calls["minus_one"] += 1
    return x - 1


@legato.workflow(name="compose_any_node")
async def any_node_wf() -> int:
    graph = legato.Graph().add_node("t", Triple()).add_node("m", minus_one).add_edge("t", "m")
    out: int = await graph.invoke(5)
    await gate(legato.workflow_id())
    return out


async def test_runnable_subclasses_and_plain_defs_are_durable_nodes_too(db):
    first, (result, info) = await run_then_restart(db, any_node_wf, "any")
    assert result == 14
    assert first == {"triple": 1, "minus_one": 1, "gate:any": 1}
    assert calls == first + Counter({"gate:any": 1})
    assert steps(info)[:2] == [("1.0.1", "step", "t"), ("1.1.1", "step", "m")]
