"""Drawing a graph: Mermaid flowcharts and Graphviz DOT.

Nodes get ids ``n0``, ``n1``, ... in the plan's order, so any node name
(spaces, quotes, dashes) is safe; the name is the label.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._graph_plan import Plan

if TYPE_CHECKING:
    from ._graph import Graph

__all__ = ["to_dot", "to_mermaid"]


def _condition_name(when: Any) -> str:
    name = getattr(when, "__name__", "")
    return name if name and name != "<lambda>" else "when"


def _mermaid_label(text: str) -> str:
    return text.replace('"', "#quot;")


def to_mermaid(graph: Graph, plan: Plan) -> str:
    """``flowchart TD``; entries as stadiums, finish nodes as double boxes, nested as hexagons."""
    entries, finish = set(plan.entries), set(plan.finish)
    lines = ["flowchart TD"]
    for i, name in enumerate(plan.names):
        label = _mermaid_label(name)
        if i in entries:
            lines.append(f'    n{i}(["{label}"])')
        elif i in finish:
            lines.append(f'    n{i}[["{label}"]]')
        elif plan.calls[i].composite:
            lines.append(f'    n{i}{{{{"{label}"}}}}')
        else:
            lines.append(f'    n{i}["{label}"]')
    for edge in graph.edges:
        s, d = plan.index[edge.src], plan.index[edge.dst]
        if edge.when is None:
            lines.append(f"    n{s} --> n{d}")
        else:
            lines.append(f'    n{s} -.->|"{_mermaid_label(_condition_name(edge.when))}"| n{d}')
    return "\n".join(lines) + "\n"


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(graph: Graph, plan: Plan) -> str:
    """``digraph``; entries rounded, finish nodes doubled, conditional edges dashed."""
    entries, finish = set(plan.entries), set(plan.finish)
    lines = [f"digraph {_dot_quote(graph.name)} {{", "    rankdir=TB;", "    node [shape=box];"]
    for i, name in enumerate(plan.names):
        attrs = [f"label={_dot_quote(name)}"]
        if i in entries:
            attrs.append('style="rounded"')
        if i in finish:
            attrs.append("peripheries=2")
        if plan.calls[i].composite:
            attrs.append("shape=box3d")
        lines.append(f"    n{i} [{', '.join(attrs)}];")
    for edge in graph.edges:
        s, d = plan.index[edge.src], plan.index[edge.dst]
        if edge.when is None:
            lines.append(f"    n{s} -> n{d};")
        else:
            label = _dot_quote(_condition_name(edge.when))
            lines.append(f"    n{s} -> n{d} [style=dashed, label={label}];")
    lines.append("}")
    return "\n".join(lines) + "\n"
