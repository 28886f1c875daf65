"""Graph outside workflows: data flow, parallelism, failures, conditions, validation, pictures."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

import legato


async def inc(x: int) -> int:
    return x + 1


async def double(x: int) -> int:
    return x * 2


def diamond(b: Any = inc, c: Any = double, d: Any = None, **options: Any) -> legato.Graph:
    async def join(deps: dict[str, int]) -> dict[str, int]:
        return deps

    graph = legato.Graph("diamond", **options)
    graph.add_node("A", inc).add_node("B", b).add_node("C", c).add_node("D", d or join)
    graph.add_edge("A", "B").add_edge("A", "C").add_edge("B", "D").add_edge("C", "D")
    return graph.set_entry("A").set_finish("D")


async def test_diamond_passes_outputs_and_runs_b_and_c_at_the_same_time():
    started: dict[str, asyncio.Event] = {"B": asyncio.Event(), "C": asyncio.Event()}
    times: dict[str, tuple[float, float]] = {}

    def meeting(me: str, other: str) -> Any:
        async def node(x: int) -> str:
            begin = time.monotonic()
            started[me].set()
            # Neither can finish unless the other one has started: they overlap.
            await asyncio.wait_for(started[other].wait(), 2)
            times[me] = (begin, time.monotonic())
            return f"{me}({x})"
        node.__name__ = me
        return node

    result = await diamond(meeting("B", "C"), meeting("C", "B")).invoke(1)

    assert result == {"B": "B(2)", "C": "C(2)"}  # D gets a mapping by dependency name
    (b_start, b_end), (c_start, c_end) = times["B"], times["C"]
    assert b_start < c_end and c_start < b_end  # the intervals overlap


async def test_a_single_dependency_passes_its_output_itself_and_one_finish_is_returned_bare():
    graph = legato.Graph().add_node("a", inc).add_node("b", double).add_edge("a", "b")
    assert await graph.invoke(3) == 8
    graph.add_node("c", inc).add_edge("a", "c")
    assert await graph.invoke(3) == {"b": 8, "c": 5}  # two finish nodes: a dict


async def test_concurrency_bounds_the_nodes_running_at_once():
    running = {"now": 0, "peak": 0}

    async def busy(x: Any) -> int:
        running["now"] += 1
        running["peak"] = max(running["peak"], running["now"])
        await asyncio.sleep(0.001)
        running["now"] -= 1
        return 1

    graph = legato.Graph().add_node("root", inc)
    for i in range(8):
        graph.add_node(f"n{i}", busy).add_edge("root", f"n{i}")
    out = await graph.invoke(0, concurrency=3)
    assert out == {f"n{i}": 1 for i in range(8)}
    assert running["peak"] == 3


async def test_a_failing_node_skips_its_dependents_and_lets_independent_branches_finish():
    c_done = asyncio.Event()

    async def broken(x: int) -> int:
        raise ValueError("B broke")

    async def slow_c(x: int) -> str:
        await asyncio.sleep(0.01)  # still running when B fails: it must not be cancelled
        c_done.set()
        return f"C({x})"

    graph = legato.Graph("g")
    graph.add_node("A", inc).add_node("B", broken).add_node("C", slow_c)
    graph.add_node("D", inc).add_node("E", inc)
    graph.add_edge("A", "B").add_edge("A", "C").add_edge("B", "D").add_edge("D", "E")

    with pytest.raises(legato.GraphError) as caught:
        await graph.invoke(1)

    err = caught.value
    assert c_done.is_set()
    assert err.failed == "B" and isinstance(err.error, ValueError)
    assert err.errors == {"B": err.error} and err.__cause__ is err.error
    assert err.results == {"A": 2, "C": "C(2)"}  # C's output is carried
    assert err.skipped == ("D", "E")
    assert err.nodes == ("B",)
    assert "'B' raised ValueError: B broke" in str(err) and "D, E" in str(err)


async def test_diamond_with_b_failing_skips_d_and_carries_cs_output():
    async def broken(x: int) -> int:
        raise ValueError("B broke")

    with pytest.raises(legato.GraphError) as caught:
        await diamond(b=broken).invoke(1)
    assert caught.value.skipped == ("D",)
    assert caught.value.results == {"A": 2, "C": 4}
    assert caught.value.failed == "B"


async def test_on_error_recovers_a_node_and_its_dependents_run():
    seen: list[tuple[str, str, Any]] = []

    async def broken(x: int) -> int:
        raise ValueError("nope")

    def recover(error: Exception, node: str, value: Any) -> int:
        seen.append((type(error).__name__, node, value))
        return 100

    out = await diamond(b=broken, on_error=recover).invoke(1)
    assert out == {"B": 100, "C": 4}
    assert seen == [("ValueError", "B", 2)]


async def test_on_error_that_raises_keeps_the_node_failed():
    async def broken(x: int) -> int:
        raise ValueError("nope")

    def reraise(error: Exception, node: str, value: Any) -> Any:
        raise KeyError(node) from error

    with pytest.raises(legato.GraphError) as caught:
        await diamond(b=broken, on_error=reraise).invoke(1)
    assert isinstance(caught.value.errors["B"], KeyError)
    assert caught.value.skipped == ("D",)


async def test_conditional_edges_route_and_the_join_gets_the_taken_branch_only():
    ran: list[str] = []

    def track(name: str) -> Any:
        async def node(x: Any) -> Any:
            ran.append(name)
            return f"{name}:{x}"
        return node

    def is_big(x: int) -> bool:
        return x > 10

    def is_small(x: int) -> bool:
        return x <= 10

    graph = legato.Graph("router")
    graph.add_node("classify", inc).add_node("big", track("big")).add_node("small", track("small"))
    graph.add_node("after_big", track("after_big")).add_node("join", track("join"))
    graph.add_edge("classify", "big", when=is_big).add_edge("classify", "small", when=is_small)
    graph.add_edge("big", "after_big").add_edge("after_big", "join").add_edge("small", "join")
    graph.set_finish("join")

    assert await graph.invoke(1) == "join:{'small': 'small:2'}"
    assert ran == ["small", "join"]  # big and everything after it did not run
    ran.clear()
    assert await graph.invoke(50) == "join:{'after_big': 'after_big:big:51'}"
    assert ran == ["big", "after_big", "join"]

    lonely = legato.Graph().add_node("a", inc).add_node("b", inc)
    lonely.add_edge("a", "b", when=lambda x: False)
    assert await lonely.invoke(1) is None  # the only finish node was not taken


async def test_a_condition_that_raises_fails_the_destination():
    graph = legato.Graph().add_node("a", inc).add_node("b", inc)
    graph.add_edge("a", "b", when=lambda x: 1 / 0)
    with pytest.raises(legato.GraphError) as caught:
        await graph.invoke(1)
    assert caught.value.failed == "b" and isinstance(caught.value.error, ZeroDivisionError)
    assert caught.value.results == {"a": 2}


async def test_nested_graph_and_chain_nodes():
    inner = legato.Graph("inner").add_node("x", inc).add_node("y", double).add_edge("x", "y")
    outer = legato.Graph("outer")
    outer.add_node("start", inc).add_node("sub", inner).add_node("pipe", legato.Chain([inc, inc]))
    outer.add_edge("start", "sub").add_edge("start", "pipe")
    assert await outer.invoke(0) == {"sub": 4, "pipe": 3}


async def test_cancelling_invoke_cancels_the_running_nodes():
    cancelled = asyncio.Event()
    entered = asyncio.Event()

    async def hang(x: int) -> int:
        entered.set()
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()
        return x

    graph = legato.Graph().add_node("a", inc).add_node("b", hang).add_edge("a", "b")
    task = asyncio.create_task(graph.invoke(1))
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cancelled.is_set()


# -- validation ---------------------------------------------------------------------


def test_a_cycle_is_named():
    graph = legato.Graph("loop")
    for n in "abcd":
        graph.add_node(n, inc)
    graph.add_edge("a", "b").add_edge("b", "c").add_edge("c", "d").add_edge("d", "b")
    with pytest.raises(legato.GraphError, match=r"cycle: 'b' -> 'c' -> 'd' -> 'b'") as caught:
        graph.compile()
    assert set(caught.value.nodes) == {"b", "c", "d"}


def test_a_self_loop_is_a_cycle():
    graph = legato.Graph().add_node("a", inc).add_edge("a", "a")
    with pytest.raises(legato.GraphError, match=r"cycle: 'a' -> 'a'"):
        graph.compile()


def test_unknown_nodes_are_named_with_where_they_are_used():
    graph = legato.Graph("g").add_node("a", inc).add_edge("a", "ghost").set_finish("nowhere")
    with pytest.raises(legato.GraphError) as caught:
        graph.compile()
    assert caught.value.nodes == ("ghost", "nowhere")
    assert "'ghost' (in edge 'a' -> 'ghost')" in str(caught.value)
    assert "'nowhere' (in set_finish)" in str(caught.value)


def test_unreachable_finish_and_nodes_are_named():
    graph = legato.Graph("g").add_node("a", inc).add_node("b", inc).add_node("c", inc)
    graph.add_edge("a", "b").set_entry("a").set_finish("c")
    with pytest.raises(legato.GraphError, match=r"finish node\(s\) 'c' can't be reached") as e:
        graph.compile()
    assert e.value.nodes == ("c",)
    graph.set_finish("b")
    with pytest.raises(legato.GraphError, match=r"node\(s\) 'c' can't be reached"):
        graph.compile()


def test_other_invalid_graphs():
    with pytest.raises(legato.GraphError, match="no nodes"):
        legato.Graph().compile()
    with pytest.raises(legato.GraphError, match="already has a node 'a'"):
        legato.Graph().add_node("a", inc).add_node("a", inc)
    twice = legato.Graph().add_node("a", inc).add_node("b", inc)
    with pytest.raises(legato.GraphError, match="twice"):
        twice.add_edge("a", "b").add_edge("a", "b").compile()
    entry = legato.Graph().add_node("a", inc).add_node("b", inc).add_edge("a", "b")
    with pytest.raises(legato.GraphError, match="entry node 'b' has incoming edges"):
        entry.set_entry("a", "b").compile()


async def test_invoke_validates_and_changes_after_compile_are_seen():
    graph = legato.Graph().add_node("a", inc)
    assert await graph.compile().invoke(1) == 2
    graph.add_edge("a", "missing")
    with pytest.raises(legato.GraphError, match="unknown"):
        await graph.invoke(1)


# -- pictures -----------------------------------------------------------------------


def test_to_mermaid_and_to_dot():
    def approved(x: Any) -> bool:
        return bool(x)

    graph = legato.Graph("review")
    graph.add_node("draft", inc).add_node('say "hi"', inc).add_node("sub", legato.Chain([inc]))
    graph.add_node("publish", inc)
    graph.add_edge("draft", 'say "hi"').add_edge("draft", "sub")
    graph.add_edge('say "hi"', "publish", when=approved).add_edge("sub", "publish")
    assert graph.to_mermaid() == (
        "flowchart TD\n"
        '    n0(["draft"])\n'
        '    n1["say #quot;hi#quot;"]\n'
        '    n2{{"sub"}}\n'
        '    n3[["publish"]]\n'
        "    n0 --> n1\n"
        "    n0 --> n2\n"
        '    n1 -.->|"approved"| n3\n'
        "    n2 --> n3\n"
    )
    dot = graph.to_dot()
    assert dot.startswith('digraph "review" {')
    assert 'n1 [label="say \\"hi\\""];' in dot
    assert 'n1 -> n3 [style=dashed, label="approved"];' in dot
    assert 'n3 [label="publish", peripheries=2];' in dot
