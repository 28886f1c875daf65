"""One run of a graph: start each node once all its dependencies are settled.

The run is event driven: a node's task is created when its last dependency
settles (from that dependency's done callback), so a node costs one task and
one callback, about what ``asyncio.gather`` pays per awaitable. Outside a
workflow that is all. Inside one, creation order depends on timing, so each
node's task gets the position scope of its index in the plan
(``fork.context(i)``): node ``i``'s durable calls are at ``P.i.1``, ... where
``P`` is the position the graph took, whatever order nodes run in.

A dependency *settles* as: done (its output flows along the edge, if the
edge's ``when`` holds), failed or skipped (its dependents are skipped), or
not taken (its dependents see the edge as not taken). A node runs when at
least one incoming edge was taken and none failed; with none taken, it is
not taken either.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
from collections import deque
from collections.abc import Callable
from typing import Any, Final, final

from ..flow._hooks import Fork
from ._graph_plan import Plan

__all__ = ["GraphRun"]

_NOT_TAKEN: Final[Any] = object()


@final
class GraphRun:
    """The state of one ``Graph.invoke``."""

    __slots__ = ("_blocked", "_cond_errors", "_done", "_due", "_fork", "_inputs", "_loop",
                 "_on_error", "_plan", "_queue", "_remaining", "_stopping", "_unsettled",
                 "errors", "fatal", "limit", "results", "skipped", "tasks")

    def __init__(self, plan: Plan, limit: int | None, fork: Fork | None,
                 on_error: Callable[[Exception, str, Any], Any] | None) -> None:
        n = len(plan.names)
        self._plan = plan
        self._fork = fork
        self._on_error = on_error
        self.limit = limit
        self._loop = asyncio.get_running_loop()
        self._remaining = [len(d) for d in plan.deps]
        self._inputs: list[list[Any]] = [[_NOT_TAKEN] * len(d) for d in plan.deps]
        self._blocked = [False] * n
        self._cond_errors: dict[int, Exception] = {}
        self._unsettled = n
        self._due: list[int] = []  # nodes whose dependencies all settled, to look at
        self._queue: deque[tuple[int, Any]] = deque()  # ready, waiting for a slot
        self._done: asyncio.Future[None] = self._loop.create_future()
        self._stopping = False
        self.tasks: dict[int, asyncio.Task[Any]] = {}
        self.results: dict[int, Any] = {}
        self.errors: dict[int, Exception] = {}
        self.skipped: list[int] = []
        self.fatal: BaseException | None = None

    async def run(self, input: Any) -> None:
        """Run every node; afterwards ``results``, ``errors``, ``skipped`` tell how it went."""
        for i in self._plan.entries:
            self._start(i, input)
        self._check_done()
        try:
            await self._done
        except BaseException:
            await self._stop()
            raise
        if self.fatal is not None:
            await self._stop()
            raise self.fatal

    # -- starting nodes -----------------------------------------------------------------

    def _start(self, i: int, value: Any) -> None:
        if self.limit is not None and len(self.tasks) >= self.limit:
            self._queue.append((i, value))
            return
        coro = self._node(i, value)
        if self._fork is None:
            task = self._loop.create_task(coro)
        else:
            task = self._loop.create_task(coro, context=self._context(i))
        self.tasks[i] = task
        task.add_done_callback(functools.partial(self._finished, i))

    def _context(self, i: int) -> contextvars.Context:
        assert self._fork is not None
        return self._fork.context(i)

    async def _node(self, i: int, value: Any) -> Any:
        call = self._plan.calls[i]
        try:
            if call.fast is not None and self._fork is None:
                return await call.fast(value)
            return await call(value)
        except Exception as exc:
            if self._on_error is None:
                raise
            # Recovery: its value stands for the node's output (or it raises).
            result = self._on_error(exc, call.name, value)
            if inspect.isawaitable(result):
                result = await result
            return result

    # -- settling -----------------------------------------------------------------------

    def _finished(self, i: int, task: asyncio.Task[Any]) -> None:
        del self.tasks[i]
        if self._stopping:
            if not task.cancelled():
                task.exception()  # retrieved: nobody else will look at it
            return
        if task.cancelled():
            name = self._plan.names[i]
            self._fail_all(asyncio.CancelledError(f"graph node {name!r} was cancelled"))
            return
        exc = task.exception()
        if exc is None:
            self._succeeded(i, task.result())
        elif isinstance(exc, Exception):
            self._failed(i, exc)
        else:  # KeyboardInterrupt, the durable layer's Suspend/LeaseLost: not a node failure
            self._fail_all(exc)
            return
        self._settle()
        while self._queue and (self.limit is None or len(self.tasks) < self.limit):
            self._start(*self._queue.popleft())
        self._check_done()

    def _succeeded(self, i: int, value: Any) -> None:
        self.results[i] = value
        self._unsettled -= 1
        inputs = self._inputs
        for d, slot, when in self._plan.outs[i]:
            if when is None:
                inputs[d][slot] = value
            else:
                try:
                    if when(value):
                        inputs[d][slot] = value
                except Exception as exc:
                    self._cond_errors.setdefault(d, exc)
            self._arrived(d)

    def _failed(self, i: int, exc: Exception) -> None:
        self.errors[i] = exc
        self._unsettled -= 1
        for d, _, _ in self._plan.outs[i]:
            self._blocked[d] = True
            self._arrived(d)

    def _arrived(self, d: int) -> None:
        self._remaining[d] -= 1
        if self._remaining[d] == 0:
            self._due.append(d)

    def _settle(self) -> None:
        """Start or settle every due node (a loop, not recursion: chains of skips are long)."""
        due = self._due
        plan = self._plan
        while due:
            d = due.pop()
            if self._blocked[d]:
                self.skipped.append(d)
                self._unsettled -= 1
                for k, _, _ in plan.outs[d]:
                    self._blocked[k] = True
                    self._arrived(k)
                continue
            error = self._cond_errors.pop(d, None)
            if error is not None:
                self._failed(d, error)
                continue
            inputs = self._inputs[d]
            if plan.single[d]:
                value = inputs[0]
                taken = value is not _NOT_TAKEN
            else:
                value = {plan.names[s]: v for s, v in zip(plan.deps[d], inputs, strict=True)
                         if v is not _NOT_TAKEN}
                taken = bool(value)
            if taken:
                self._start(d, value)
            else:
                self._unsettled -= 1
                for k, _, _ in plan.outs[d]:
                    self._arrived(k)

    def _check_done(self) -> None:
        self._settle()
        if self._unsettled == 0 and not self._done.done():
            self._done.set_result(None)

    def _fail_all(self, exc: BaseException) -> None:
        self.fatal = self.fatal or exc
        if not self._done.done():
            self._done.set_result(None)

    async def _stop(self) -> None:
        """Cancel the nodes still running and wait for them."""
        self._stopping = True
        self._queue.clear()
        tasks = list(self.tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
