"""``Graph``: a DAG of runnables; each node runs once all its dependencies finished."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, final

from .._errors import GraphError
from ..flow._hooks import RECORDER
from ._chain import ErrorHandler
from ._graph_plan import Condition, Edge, Plan, plan
from ._graph_render import to_dot, to_mermaid
from ._graph_run import GraphRun
from ._runnable import Runnable, as_runnable

__all__ = ["Graph"]


@final
class Graph(Runnable[Any, Any]):
    """A DAG of runnables (Beluga's graphs): independent nodes run in parallel.

    Example::

        graph = legato.Graph()
        graph.add_node("fetch", fetch)
        graph.add_node("summary", summarize)
        graph.add_node("keywords", extract_keywords)
        graph.add_node("report", write_report)
        graph.add_edge("fetch", "summary")            # summary depends on fetch
        graph.add_edge("fetch", "keywords")           # summary and keywords run in parallel
        graph.add_edge("summary", "report")
        graph.add_edge("keywords", "report")          # report gets {"summary": .., "keywords": ..}
        graph.set_entry("fetch")
        graph.set_finish("report")
        report = await graph.compile().invoke(url, concurrency=4)

    How values flow:

    - entry nodes get the graph's input;
    - a node with **one** incoming edge gets that node's output itself; a node
      with several gets a ``dict`` of their outputs by node name (in the order
      the edges were added) — whether an edge is conditional or not;
    - ``invoke`` returns the finish node's output when there is one finish
      node, else a ``dict`` by node name (in ``set_finish`` order).

    Defaults: without ``set_entry``, every node without incoming edges is an
    entry; without ``set_finish``, every node without outgoing edges is a
    finish node.

    Conditional edges: ``add_edge(src, dst, when=fn)`` is *taken* only if
    ``fn(src's output)`` is true. A node runs when all its incoming edges are
    settled and at least one was taken; a taken edge's output is in its
    input, a not-taken one's is left out of the mapping. A node none of whose
    edges was taken does not run, and its own edges count as not taken
    (routing: ``when=is_spam`` to one branch, ``when=is_ham`` to the other,
    both joining into one node that gets ``{"spam_branch": ...}`` or
    ``{"ham_branch": ...}``). A finish node that did not run is left out of
    the result (a single one gives ``None``). A ``when`` that raises fails
    the edge's destination node with that error.

    Failures: a node that raises stops its dependents (skipped) while
    independent branches finish; then ``invoke`` raises :class:`GraphError`
    with ``errors`` (by node), ``results`` (every finished node's output),
    ``skipped``, and the first error as ``__cause__``. ``on_error(error,
    node_name, input)`` can recover: its return value becomes the node's
    output (raise to keep it failed).

    A node that is itself a Graph or a :class:`~legato.Chain` nests. Inside a
    workflow every leaf node is a durable step named after its node, so a
    crash mid-graph resumes with finished nodes not run again; a nested
    graph's or chain's own nodes and steps are the durable steps.

    Args:
        name: the graph's name (in messages and renderings).
        on_error: recovery for failing nodes, as above.
        concurrency: the default bound on nodes running at once (``invoke``'s
            ``concurrency=`` overrides it).
    """

    composite = True

    def __init__(self, name: str = "graph", *, on_error: ErrorHandler | None = None,
                 concurrency: int | None = None) -> None:
        if on_error is not None and not callable(on_error):
            raise TypeError(
                f"on_error= takes a function (error, node_name, input), not {on_error!r}")
        self.name = name
        self.on_error = on_error
        self.concurrency = _limit(concurrency)
        self.nodes: dict[str, Runnable[Any, Any]] = {}
        self.edges: list[Edge] = []
        self.entry: tuple[str, ...] = ()
        self.finish: tuple[str, ...] = ()
        self._plan: Plan | None = None

    def __repr__(self) -> str:
        return f"<Graph {self.name!r}: {len(self.nodes)} nodes, {len(self.edges)} edges>"

    # -- building -----------------------------------------------------------------------

    def add_node(self, name: str, runnable: Any) -> Graph:
        """Add a node: a Runnable, an ``async def``/``def``, a ``@legato.step``, a Chain or Graph.

        Returns the graph, so calls can be chained.

        Raises:
            GraphError: a node with that name is already in the graph.
        """
        if not isinstance(name, str) or not name:
            raise TypeError(f"a node name is a non-empty str, not {name!r}")
        if name in self.nodes:
            raise GraphError(
                f"graph {self.name!r} already has a node {name!r}; give each node its own name",
                [name])
        self.nodes[name] = as_runnable(runnable, f"node {name!r}")
        self._plan = None
        return self

    def add_edge(self, src: str, dst: str, *, when: Condition | None = None) -> Graph:
        """Make ``dst`` depend on ``src`` (only when ``when(src's output)`` is true, if given).

        Unknown names are reported by :meth:`compile`, so nodes and edges may
        be added in any order.
        """
        if when is not None and not callable(when):
            raise TypeError(f"when= takes a function of the source's output, not {when!r}")
        self.edges.append(Edge(src, dst, when))
        self._plan = None
        return self

    def set_entry(self, *names: str | Iterable[str]) -> Graph:
        """The nodes that get the graph's input: ``set_entry("a", "b")`` or ``set_entry(["a"])``."""
        self.entry = _names(names)
        self._plan = None
        return self

    def set_finish(self, *names: str | Iterable[str]) -> Graph:
        """The nodes whose outputs ``invoke`` returns (same forms as :meth:`set_entry`)."""
        self.finish = _names(names)
        self._plan = None
        return self

    def compile(self) -> Graph:
        """Check the graph; ``invoke`` compiles too, so this is for failing early.

        Raises:
            GraphError: unknown nodes, a cycle, an entry node with incoming edges,
                or nodes (finish nodes included) that no entry node reaches —
                the message and ``err.nodes`` name the nodes.
        """
        if self._plan is None:
            self._plan = plan(self.name, self.nodes, self.edges, self.entry, self.finish)
        return self

    # -- running ------------------------------------------------------------------------

    async def invoke(self, input: Any, *, concurrency: int | None = None) -> Any:
        """Run the graph on ``input``; the finish node's output (a dict for several).

        Args:
            input: what the entry nodes get.
            concurrency: at most this many nodes run at once (default: the
                graph's ``concurrency``, else no bound).

        Raises:
            GraphError: the graph is invalid, or nodes failed (see the class docs).
        """
        self.compile()
        run_plan = self._plan
        assert run_plan is not None
        recorder = RECORDER.get()
        fork = None if recorder is None else recorder.fork("graph", len(run_plan.names))
        limit = _limit(concurrency) if concurrency is not None else self.concurrency
        run = GraphRun(run_plan, limit, fork, self.on_error)
        await run.run(input)
        names = run_plan.names
        if run.errors:
            raise self._failure(run, names) from run.errors[min(run.errors)]
        outputs = {names[i]: run.results[i] for i in run_plan.finish if i in run.results}
        if len(run_plan.finish) == 1:
            return outputs.get(names[run_plan.finish[0]])
        return outputs

    def _failure(self, run: GraphRun, names: list[str]) -> GraphError:
        errors = {names[i]: run.errors[i] for i in sorted(run.errors)}
        results = {names[i]: run.results[i] for i in sorted(run.results)}
        skipped = [names[i] for i in sorted(run.skipped)]
        failures = "; ".join(f"{n!r} raised {type(e).__name__}: {e}" for n, e in errors.items())
        message = f"graph {self.name!r}: {failures}."
        if skipped:
            message += f" Skipped because a dependency failed: {', '.join(skipped)}."
        message += (f" Finished: {', '.join(results) or 'none'}. See err.errors and err.results;"
                    " fix the node or recover with Graph(on_error=...)")
        return GraphError(message, list(errors), errors, results, skipped)

    # -- pictures -----------------------------------------------------------------------

    def to_mermaid(self) -> str:
        """The graph as a Mermaid flowchart (paste it in a ```mermaid block).

        Example::

            print(graph.to_mermaid())

        Entry nodes are drawn as stadiums, finish nodes as double-sided boxes,
        other nested graphs and chains as hexagons; a conditional edge is
        dotted and labelled with its condition's function name.
        """
        self.compile()
        assert self._plan is not None
        return to_mermaid(self, self._plan)

    def to_dot(self) -> str:
        """The graph in Graphviz DOT (``dot -Tsvg``), drawn as :meth:`to_mermaid` draws it.

        Example::

            Path("graph.dot").write_text(graph.to_dot())
        """
        self.compile()
        assert self._plan is not None
        return to_dot(self, self._plan)


def _names(names: tuple[str | Iterable[str], ...]) -> tuple[str, ...]:
    flat: list[str] = []
    for item in names:
        if isinstance(item, str):
            flat.append(item)
        else:
            flat.extend(item)
    return tuple(flat)


def _limit(concurrency: int | None) -> int | None:
    if concurrency is not None and (isinstance(concurrency, bool) or concurrency < 1):
        raise ValueError(f"concurrency must be at least 1 or None, not {concurrency!r}")
    return concurrency
