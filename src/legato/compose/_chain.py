"""``Chain``: steps run in order, each one's output the next one's input (Beluga's chains)."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, Final, final

from .._duration import Duration, to_seconds
from ..flow import timeout as flow_timeout
from ..flow._hooks import RECORDER
from ..resilience import Retry
from ..resilience._deadline import within
from ._call import Call
from ._memory import Memory
from ._runnable import Runnable, as_runnable

__all__ = ["Chain", "ErrorHandler"]

#: ``on_error(error, step_name, input)``: a replacement output, or raise.
ErrorHandler = Callable[[Exception, str, Any], Any]

_EXPIRED: Final[Any] = object()


@final
class Chain(Runnable[Any, Any]):
    """Run steps in order; each step's output is the next step's input.

    Example::

        chain = legato.Chain([fetch, parse, summarize], timeout=30, retries=3,
                             retry_delay="2s")
        summary = await chain.invoke("https://example.com")
        same = fetch | parse | summarize          # a Chain without options

        async for chunk in chain.stream(url):     # the last step's chunks
            print(chunk, end="")

    Args:
        steps: runnables, ``async def``/``def`` functions or ``@legato.step`` s,
            adapted with :func:`legato.runnable`; a Chain or Graph nests.
        timeout: seconds (or ``"30s"``) for the whole chain; when they run out
            the running step is cancelled and ``invoke`` raises ``TimeoutError``.
        retries: how many times to re-run a failing step (``0``: none), or a
            :class:`~legato.Retry` for the full policy. A ``@legato.step``
            with its own ``retry=`` keeps its own; a nested Chain or Graph
            uses its own options (retries, memory, on_error).
        retry_delay: the wait between retries when ``retries`` is a number
            (constant, no jitter).
        memory: a :class:`~legato.Memory` passed to every step that has a
            parameter named ``memory``. A step's writes reach the memory when
            it succeeds; a failed attempt leaves it untouched.
        on_error: ``on_error(error, step_name, input)``, called (and awaited
            if it returns an awaitable) when a step fails after its retries:
            its return value replaces the step's output and the chain goes
            on; it may re-raise ``error`` or raise something else. It does not
            see the chain's own ``TimeoutError``.
        name: the chain's name (in reprs and when it is a graph's node).

    Inside a workflow every step is a durable step named after its runnable
    (the function's name): finished steps are not run again on replay, retry
    waits are durable sleeps, the timeout is :func:`legato.timeout` (its
    decision is recorded), and memory writes are recorded with each step's
    output, so a replay rebuilds the memory without running the steps.
    ``on_error`` runs as workflow code: keep it deterministic.
    """

    composite = True

    def __init__(
        self, steps: Iterable[Any], *, timeout: Duration | None = None,
        retries: int | Retry = 0, retry_delay: Duration = 0, memory: Memory | None = None,
        on_error: ErrorHandler | None = None, name: str = "chain",
    ) -> None:
        runnables = [as_runnable(s, f"chain step {i}") for i, s in enumerate(steps)]
        if not runnables:
            raise ValueError("a Chain needs at least one step")
        if memory is not None and not isinstance(memory, Memory):
            raise TypeError(f"memory= takes a legato.Memory(), not {memory!r}")
        if on_error is not None and not callable(on_error):
            raise TypeError(
                f"on_error= takes a function (error, step_name, input), not {on_error!r}")
        self.name = name
        self.steps: tuple[Runnable[Any, Any], ...] = tuple(runnables)
        self.timeout = None if timeout is None else to_seconds(timeout)
        self.retry = _policy(retries, retry_delay)
        self.memory = memory
        self.on_error = on_error
        self._calls = [Call(r, r.name, self.retry) for r in runnables]

    @classmethod
    def of(cls, first: Any, second: Any) -> Chain:
        """``first | second``: plain chains (no options) are flattened into one."""
        parts: list[Any] = []
        for part in (first, second):
            if isinstance(part, Chain) and part._is_plain():
                parts.extend(part.steps)
            else:
                parts.append(part)
        return cls(parts)

    def __repr__(self) -> str:
        return f"<Chain {self.name!r}: {' | '.join(r.name for r in self.steps)}>"

    async def invoke(self, input: Any) -> Any:
        """Run every step in order on ``input``; the last step's output.

        Raises:
            TimeoutError: the chain's ``timeout`` ran out (the running step was cancelled).
            The failing step's error, when there is no ``on_error`` or it raised.
        """
        if self.timeout is None:
            return await self._run(input, [""])
        if RECORDER.get() is not None:
            # legato.timeout records whether it fired, so a replay decides the same.
            out = await flow_timeout(self.timeout, self._run(input, [""]), _EXPIRED)
            if out is _EXPIRED:
                raise TimeoutError(self._timeout_message(None)) from None
            return out
        running = [""]
        return await within(self.timeout, self._run(input, running),
                            lambda: self._timeout_message(running[0]))

    async def stream(self, input: Any) -> AsyncIterator[Any]:
        """Run every step but the last, then yield the last step's chunks as they come.

        ``timeout`` does not apply to a stream (the consumer sets the pace);
        ``on_error`` covers the steps before the last one. Inside a workflow
        the last step is recorded whole, then its chunks are yielded.
        """
        value = await self._run(input, [""], stop=len(self._calls) - 1)
        async for chunk in self._calls[-1].stream(value, self.memory):
            yield chunk

    async def _run(self, value: Any, running: list[str], stop: int | None = None) -> Any:
        memory = self.memory
        for call in self._calls[:stop]:
            running[0] = call.name
            if self.on_error is None:
                value = await call(value, memory)
                continue
            try:
                value = await call(value, memory)
            except Exception as exc:
                value = await _handled(self.on_error, exc, call.name, value)
        return value

    def _is_plain(self) -> bool:
        return (self.timeout is None and self.retry is None and self.memory is None
                and self.on_error is None and self.name == "chain")

    def _timeout_message(self, step: str | None) -> str:
        where = f" while step {step!r} was running (it was cancelled)" if step else ""
        return (f"chain {self.name!r} did not finish within its timeout of "
                f"{self.timeout:g} s{where}; raise timeout= or make the steps faster")


async def _handled(on_error: ErrorHandler, exc: Exception, name: str, value: Any) -> Any:
    result = on_error(exc, name, value)
    if inspect.isawaitable(result):
        result = await result
    return result


def _policy(retries: int | Retry, retry_delay: Duration) -> Retry | None:
    if isinstance(retries, Retry):
        return retries
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries= takes a number of retries (0 or more) or a legato.Retry, "
                         f"not {retries!r}")
    if retries == 0:
        return None
    return Retry(attempts=retries + 1, initial=retry_delay, backoff=1, jitter=0)
