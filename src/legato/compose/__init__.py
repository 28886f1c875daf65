"""Composition: Beluga's chains, graphs and worker pools on legato's primitives.

- :class:`Runnable` / :func:`runnable`: one input in, one output out
  (``invoke``, ``batch``, ``stream``); ``a | b`` is a chain.
- :class:`Chain`: steps in order, with a timeout, retries, memory and an
  error handler.
- :class:`Graph`: a DAG; nodes run as soon as their dependencies finished.
- :class:`Memory`: what chain steps share across invocations.
- :class:`Pool`: ``size`` workers and a bounded queue.

Plain asyncio outside workflows; inside one, every chain step and graph node
is a durable step (``_call.Call``), so a crash resumes mid-chain or mid-graph
without running finished parts again.
"""

from ._chain import Chain as Chain
from ._graph import Graph as Graph
from ._memory import Memory as Memory
from ._pool import Pool as Pool
from ._runnable import Runnable as Runnable
from ._runnable import runnable as runnable

__all__ = ["Chain", "Graph", "Memory", "Pool", "Runnable", "runnable"]
