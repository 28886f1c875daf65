"""How one chain step or graph node runs: plainly, or inside a workflow as one durable step.

Outside a workflow a :class:`Call` is the runnable itself (plus the chain's
retry policy). Inside one, a leaf runnable becomes a ``@legato.step`` named
after the chain step or graph node, so its outcome is recorded and a replay
doesn't run it again; a Chain or Graph is not wrapped: its own steps and
nodes record themselves, so a crash inside a nested graph resumes inside it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, final

from ..durable import Scope, Step
from ..flow._hooks import RECORDER
from ..resilience import Retry
from ._memory import Memory
from ._runnable import FnRunnable, Runnable, wants_memory

__all__ = ["Call"]


@final
class Call:
    """One step of a chain or node of a graph, bound to its name and retry policy."""

    __slots__ = ("_durable", "_retry", "composite", "fast", "name", "runnable", "takes_memory")

    def __init__(self, runnable: Runnable[Any, Any], name: str, retry: Retry | None = None) -> None:
        self.runnable = runnable
        self.name = name
        self.composite = runnable.composite
        own = runnable.step if isinstance(runnable, FnRunnable) else None
        # A @legato.step's own retry policy wins over the chain's.
        self._retry = None if own is not None and own.retry is not None else retry
        if isinstance(runnable, FnRunnable):
            self.takes_memory = runnable.takes_memory
        else:
            self.takes_memory = not self.composite and wants_memory(runnable.invoke)
        # The fast path of a plain run: an async def with nothing around it.
        self.fast: Any = None
        if (isinstance(runnable, FnRunnable) and own is None and runnable.is_async
                and not runnable.is_generator and self._retry is None and not self.takes_memory):
            self.fast = runnable.target
        self._durable: dict[str, Step[Any, Any]] = {}

    def __repr__(self) -> str:
        return f"<Call {self.name!r} {self.runnable!r}>"

    async def __call__(self, input: Any, memory: Memory | None = None) -> Any:
        """The output for ``input``; recorded as a step when inside a workflow."""
        if self.composite:
            return await self.runnable.invoke(input)
        if isinstance(RECORDER.get(), Scope):
            return await self._recorded("invoke", input, memory)
        if self._retry is not None:
            out, writes = await self._retry.call(self._attempt, input, memory, False)
        else:
            out, writes = await self._attempt(input, memory, False)
        if writes:
            assert memory is not None
            memory._apply(writes)
        return out

    async def stream(self, input: Any, memory: Memory | None = None) -> AsyncIterator[Any]:
        """The runnable's chunks; inside a workflow, the recorded chunks once it finished."""
        if self.composite:
            async for chunk in self.runnable.stream(input):
                yield chunk
            return
        if isinstance(RECORDER.get(), Scope):
            for chunk in await self._recorded("stream", input, memory):
                yield chunk
            return
        view = memory._view() if memory is not None and self.takes_memory else None
        if isinstance(self.runnable, FnRunnable):
            chunks = self.runnable.stream(input, memory=view)
        else:
            chunks = self.runnable.stream(input)
        async for chunk in chunks:
            yield chunk
        if view is not None and memory is not None:
            memory._apply(view._writes())

    # -- the pieces ---------------------------------------------------------------------

    async def _attempt(self, input: Any, memory: Memory | None, bare: bool
                       ) -> tuple[Any, list[Any]]:
        """One run on a private view of ``memory``: the output and the view's writes."""
        view = memory._view() if memory is not None and self.takes_memory else None
        runnable = self.runnable
        if isinstance(runnable, FnRunnable):
            call = runnable.bare(input, view) if bare else runnable.invoke(input, memory=view)
            out = await call
        elif view is not None:
            out = await runnable.invoke(input, memory=view)  # type: ignore[call-arg]
        else:
            out = await runnable.invoke(input)
        return out, ([] if view is None else view._writes())

    async def _recorded(self, mode: str, input: Any, memory: Memory | None) -> Any:
        with_memory = memory is not None and self.takes_memory
        key = f"{mode}{'+memory' if with_memory else ''}"
        step = self._durable.get(key)
        if step is None:
            step = self._durable[key] = self._make_step(mode, with_memory)
        if not with_memory:
            return await step(input)
        out, writes = await step(input, memory)
        assert memory is not None
        memory._apply(writes)  # replayed or not, the writes reach the chain's memory here
        return out

    def _make_step(self, mode: str, with_memory: bool) -> Step[Any, Any]:
        runnable = self.runnable
        own = runnable.step if isinstance(runnable, FnRunnable) else None
        timeout = own.timeout if own is not None else None
        retry = own.retry if own is not None and own.retry is not None else self._retry
        circuit = own.circuit if own is not None else None
        if (mode == "invoke" and not with_memory and isinstance(runnable, FnRunnable)
                and not runnable.is_generator):
            # The common case: the function itself is the step's body (a def runs in a thread).
            return Step(runnable.target, name=self.name, timeout=timeout, retry=retry,
                        circuit=circuit)

        async def body(input: Any, memory: Memory | None = None) -> Any:
            if mode == "stream":
                view = memory._view() if memory is not None else None
                if isinstance(runnable, FnRunnable):
                    chunks = [c async for c in runnable.stream(input, memory=view)]
                else:
                    chunks = [c async for c in runnable.stream(input)]
                return [chunks, view._writes()] if view is not None else chunks
            out, writes = await self._attempt(input, memory, True)
            return [out, writes] if with_memory else out

        body.__name__ = self.name
        return Step(body, name=self.name, timeout=timeout, retry=retry, circuit=circuit)
