"""Validating a graph and laying it out for runs: ``Graph.compile()``'s work.

A :class:`Plan` numbers the nodes in a topological order (ties broken by the
order they were added), so that a run can refer to nodes by index and, inside
a workflow, give node ``i`` the position scope ``i`` whatever order nodes
finish in.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, final

from .._errors import GraphError
from ._call import Call
from ._runnable import Runnable

__all__ = ["Edge", "Plan", "plan"]

Condition = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class Edge:
    """``dst`` depends on ``src``; with ``when``, only if ``when(src's output)`` is true."""

    src: str
    dst: str
    when: Condition | None = None


@final
class Plan:
    """A valid graph, by node index (topological order)."""

    __slots__ = ("calls", "deps", "entries", "finish", "index", "names", "outs", "single")

    def __init__(self, names: list[str], calls: list[Call], deps: list[list[int]],
                 outs: list[list[tuple[int, int, Condition | None]]], entries: list[int],
                 finish: list[int]) -> None:
        self.names = names
        self.index = {name: i for i, name in enumerate(names)}
        self.calls = calls
        self.deps = deps  # node -> its dependencies, in the order the edges were added
        self.outs = outs  # node -> (dependent, slot in its deps, condition)
        self.entries = entries
        self.finish = finish
        # A node with one declared dependency gets that output itself, not a mapping.
        self.single = [len(d) == 1 for d in deps]


def plan(name: str, nodes: dict[str, Runnable[Any, Any]], edges: Sequence[Edge],
         entry: Sequence[str], finish: Sequence[str]) -> Plan:
    """Check the graph and lay it out; a :class:`GraphError` names what is wrong."""
    if not nodes:
        raise GraphError(f"graph {name!r} has no nodes; add some with add_node(name, runnable)")
    _check_known(name, nodes, edges, entry, finish)
    _check_duplicates(name, edges)
    order = _topological(name, list(nodes), edges)
    index = {n: i for i, n in enumerate(order)}
    deps: list[list[int]] = [[] for _ in order]
    outs: list[list[tuple[int, int, Condition | None]]] = [[] for _ in order]
    for edge in edges:
        s, d = index[edge.src], index[edge.dst]
        outs[s].append((d, len(deps[d]), edge.when))
        deps[d].append(s)
    entries = [index[n] for n in entry] if entry else [i for i in range(len(order)) if not deps[i]]
    for i in entries:
        if deps[i]:
            sources = ", ".join(repr(order[s]) for s in deps[i])
            raise GraphError(
                f"graph {name!r}: entry node {order[i]!r} has incoming edges from {sources}; "
                "an entry node gets the graph's input, so remove those edges or the entry",
                [order[i]])
    sinks = [i for i in range(len(order)) if not outs[i]]
    finishes = [index[n] for n in finish] if finish else sinks
    _check_reachable(name, order, outs, entries, finishes)
    calls = [Call(nodes[n], n) for n in order]
    return Plan(order, calls, deps, outs, entries, finishes)


def _check_known(name: str, nodes: dict[str, Any], edges: Sequence[Edge],
                 entry: Sequence[str], finish: Sequence[str]) -> None:
    unknown: dict[str, list[str]] = {}
    for edge in edges:
        for end in (edge.src, edge.dst):
            if end not in nodes:
                unknown.setdefault(end, []).append(f"edge {edge.src!r} -> {edge.dst!r}")
    for role, names in (("set_entry", entry), ("set_finish", finish)):
        for n in names:
            if n not in nodes:
                unknown.setdefault(n, []).append(role)
    if unknown:
        where = "; ".join(f"{n!r} (in {', '.join(places)})" for n, places in unknown.items())
        raise GraphError(
            f"graph {name!r} refers to unknown nodes: {where}. The nodes are "
            f"{', '.join(map(repr, nodes))}; add_node() the missing ones or fix the names",
            list(unknown))


def _check_duplicates(name: str, edges: Sequence[Edge]) -> None:
    seen: set[tuple[str, str]] = set()
    for edge in edges:
        key = (edge.src, edge.dst)
        if key in seen:
            raise GraphError(
                f"graph {name!r} has the edge {edge.src!r} -> {edge.dst!r} twice; "
                "keep one (combine the conditions into one when=)", list(key))
        seen.add(key)


def _topological(name: str, names: list[str], edges: Sequence[Edge]) -> list[str]:
    """Kahn's algorithm, ties in insertion order; a cycle is a GraphError naming it."""
    indegree = dict.fromkeys(names, 0)
    outs: dict[str, list[str]] = {n: [] for n in names}
    for edge in edges:
        indegree[edge.dst] += 1
        outs[edge.src].append(edge.dst)
    ready = deque(n for n in names if indegree[n] == 0)
    order: list[str] = []
    while ready:
        n = ready.popleft()
        order.append(n)
        for d in outs[n]:
            indegree[d] -= 1
            if indegree[d] == 0:
                ready.append(d)
    if len(order) < len(names):
        cycle = _find_cycle([n for n in names if indegree[n] > 0], outs, indegree)
        raise GraphError(
            f"graph {name!r} has a cycle: {' -> '.join(map(repr, cycle))}; a graph must be "
            "acyclic: remove one of these edges (loop inside a node instead)", cycle[:-1])
    return order


def _find_cycle(left: list[str], outs: dict[str, list[str]], indegree: dict[str, int]
                ) -> list[str]:
    """A cycle among the nodes Kahn's algorithm left, as ``[a, b, ..., a]``."""
    # Each node left has a predecessor that is also left, so walking backwards
    # through such predecessors must come back to a node already on the path.
    preds: dict[str, list[str]] = {n: [] for n in left}
    for n in left:
        for d in outs[n]:
            if indegree[d] > 0:
                preds[d].append(n)
    on_path: dict[str, int] = {}
    path: list[str] = []
    node = left[0]
    while node not in on_path:
        on_path[node] = len(path)
        path.append(node)
        node = preds[node][0]
    cycle = path[on_path[node]:]
    cycle.reverse()
    first = min(range(len(cycle)), key=lambda k: left.index(cycle[k]))  # the earliest added
    cycle = cycle[first:] + cycle[:first]
    return [*cycle, cycle[0]]


def _check_reachable(name: str, order: list[str], outs: list[list[tuple[int, int, Any]]],
                     entries: list[int], finishes: list[int]) -> None:
    seen = set(entries)
    todo = list(entries)
    while todo:
        for d, _, _ in outs[todo.pop()]:
            if d not in seen:
                seen.add(d)
                todo.append(d)
    entry_names = ", ".join(repr(order[i]) for i in entries)
    lost_finish = [order[i] for i in finishes if i not in seen]
    if lost_finish:
        raise GraphError(
            f"graph {name!r}: finish node(s) {', '.join(map(repr, lost_finish))} can't be "
            f"reached from the entry node(s) {entry_names}; add edges to them or fix set_entry",
            lost_finish)
    lost = [order[i] for i in range(len(order)) if i not in seen]
    if lost:
        raise GraphError(
            f"graph {name!r}: node(s) {', '.join(map(repr, lost))} can't be reached from the "
            f"entry node(s) {entry_names} and would never run; add edges to them, list them "
            "in set_entry, or remove them", lost)
