"""``Runnable``: something that turns one input into one output (``invoke``/``batch``/``stream``).

Chains, graphs and adapted functions are runnables; ``a | b`` composes two
into a :class:`~legato.Chain`. :func:`runnable` adapts an ``async def``, a
plain ``def`` (run in a thread), an async generator (its chunks are streamed)
or a ``@legato.step``.
"""

from __future__ import annotations

import abc
import asyncio
import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, final, overload

from ..durable import Step
from ..flow import parallel
from ._memory import Memory

if TYPE_CHECKING:
    from ._chain import Chain

__all__ = ["FnRunnable", "Runnable", "as_runnable", "is_async", "runnable", "wants_memory"]

In = TypeVar("In")
Out = TypeVar("Out")


class Runnable(abc.ABC, Generic[In, Out]):
    """One input in, one output out: the unit chains and graphs are made of.

    Subclass it and implement :meth:`invoke`, or adapt a function with
    :func:`legato.runnable`. :meth:`batch` and :meth:`stream` come for free;
    ``a | b`` makes a :class:`~legato.Chain` (``b`` gets ``a``'s output).

    Example::

        class Shout(legato.Runnable[str, str]):
            async def invoke(self, input: str) -> str:
                return input.upper() + "!"

        await Shout().invoke("hi")                      # "HI!"
        await Shout().batch(["a", "b"], concurrency=2)  # ["A!", "B!"]
        pipeline = Shout() | legato.runnable(len)       # a Chain

    An ``invoke`` with a parameter named ``memory`` receives the chain's
    :class:`~legato.Memory`. Inside a workflow a runnable that is a step of a
    chain or a node of a graph runs as one durable step (its output is
    recorded); :class:`~legato.Chain` and :class:`~legato.Graph` are not
    steps themselves: their own steps and nodes are.
    """

    #: The name recorded for it inside workflows (a chain's step, a graph's node).
    name: str = "runnable"
    #: True for Chain and Graph: inside a workflow their parts are the durable steps.
    composite: ClassVar[bool] = False

    @abc.abstractmethod
    async def invoke(self, input: In) -> Out:
        """Run on one input and return the output."""

    async def batch(self, inputs: Iterable[In], *, concurrency: int | None = None) -> list[Out]:
        """Run on every input concurrently; outputs in input order.

        Example::

            lengths = await legato.runnable(fetch_len).batch(urls, concurrency=10)

        Args:
            inputs: the inputs.
            concurrency: at most this many run at once (``None``: no bound).

        Raises:
            The first failure in input order; the other runs are cancelled
            (this is :func:`legato.parallel` with ``limit=concurrency``, so it
            is durable inside a workflow).
        """
        if concurrency is not None and (isinstance(concurrency, bool) or concurrency < 1):
            raise ValueError(f"concurrency must be at least 1 or None, not {concurrency!r}")
        return await parallel([self.invoke(x) for x in inputs], limit=concurrency)

    async def stream(self, input: In) -> AsyncIterator[Any]:
        """Yield the output in chunks; by default the whole output is one chunk.

        Example::

            async for chunk in chain.stream("tell me a story"):
                print(chunk, end="")
        """
        yield await self.invoke(input)

    def __or__(self, other: Any) -> Chain:
        from ._chain import Chain

        return Chain.of(self, other)

    def __ror__(self, other: Any) -> Chain:
        from ._chain import Chain

        return Chain.of(other, self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


@final
class FnRunnable(Runnable[Any, Any]):
    """A function adapted by :func:`runnable` (see there)."""

    def __init__(self, fn: Callable[..., Any], name: str | None = None) -> None:
        if not callable(fn):
            raise TypeError(
                f"runnable() takes an async def, a def, an async generator or a @legato.step, "
                f"not {fn!r}"
            )
        self.fn = fn
        self.step = fn if isinstance(fn, Step) else None
        # The function itself, without a step's policies (a durable call adds them back).
        self.target: Callable[..., Any] = fn.fn if isinstance(fn, Step) else fn
        self.name = name or _name_of(fn)
        self.is_generator = inspect.isasyncgenfunction(self.target)
        self.is_async = not self.is_generator and is_async(self.target)
        self.takes_memory = wants_memory(self.target)
        self.__wrapped__ = self.target  # for help() and inspect
        self.__doc__ = getattr(self.target, "__doc__", None)

    async def invoke(self, input: Any, *, memory: Memory | None = None) -> Any:
        """Call the function on ``input``; an async generator's chunks come back as a list."""
        if self.step is not None and not self.is_generator:
            return await self.step(input, **self._kwargs(memory))
        return await self.bare(input, memory)

    async def bare(self, input: Any, memory: Memory | None = None) -> Any:
        """Call the function without a step's retry, timeout or circuit breaker."""
        if self.is_generator:
            return [chunk async for chunk in self.stream(input, memory=memory)]
        if self.is_async:
            return await self.target(input, **self._kwargs(memory))
        # A plain def may block: it runs in a thread, as a @legato.step does.
        return await asyncio.to_thread(self.target, input, **self._kwargs(memory))

    async def stream(self, input: Any, *, memory: Memory | None = None) -> AsyncIterator[Any]:
        """An async generator's chunks as they come; otherwise the one output."""
        if not self.is_generator:
            yield await self.invoke(input, memory=memory)
            return
        async for chunk in self.target(input, **self._kwargs(memory)):
            yield chunk

    def _kwargs(self, memory: Memory | None) -> dict[str, Any]:
        return {"memory": memory} if memory is not None and self.takes_memory else {}


@overload
def runnable(fn: Callable[[In], Awaitable[Out]], /, *, name: str | None = None
             ) -> Runnable[In, Out]: ...
@overload
def runnable(fn: Callable[[In], Out], /, *, name: str | None = None) -> Runnable[In, Out]: ...
@overload
def runnable(*, name: str | None = None) -> Callable[[Callable[..., Any]], Runnable[Any, Any]]: ...
def runnable(fn: Any = None, /, *, name: str | None = None) -> Any:
    """Adapt a function into a :class:`Runnable` (also a decorator).

    Example::

        @legato.runnable
        async def fetch(url: str) -> str: ...

        count = legato.runnable(lambda page: len(page.split()), name="count")
        pipeline = fetch | count                  # a Chain: fetch, then count
        await pipeline.invoke("https://example.com")

        @legato.runnable
        async def tokens(prompt: str):            # an async generator streams
            for word in prompt.split():
                yield word

    Args:
        fn: an ``async def`` taking the input; a plain ``def`` (run in a thread,
            like ``@legato.step``); an async generator function (``stream``
            yields its chunks, ``invoke`` returns them as a list); a
            ``@legato.step`` (its retry, timeout and circuit breaker apply); or
            a ``Runnable``, returned as is.
        name: the name recorded inside workflows (default: the function's).

    A function with a parameter named ``memory`` receives the chain's
    :class:`~legato.Memory`.
    """
    if fn is None:
        return lambda f: runnable(f, name=name)
    if isinstance(fn, Runnable) and name is None:
        return fn
    if isinstance(fn, Runnable):
        raise TypeError(f"{fn!r} is already a Runnable; set its name with its own options")
    return FnRunnable(fn, name)


def as_runnable(value: Any, where: str) -> Runnable[Any, Any]:
    """``value`` as a Runnable, or a TypeError saying which ``where`` was wrong."""
    if isinstance(value, Runnable):
        return value
    if callable(value):
        return FnRunnable(value)
    raise TypeError(
        f"{where} must be a Runnable, an async def, a def or a @legato.step, not {value!r}"
    )


def wants_memory(fn: Any) -> bool:
    """Whether ``fn`` (a function or a Runnable's ``invoke``) has a ``memory`` parameter."""
    code = getattr(fn, "__code__", None)
    if code is not None and not hasattr(fn, "__signature__"):
        # A plain function: its code says it, ~50x faster than inspect.signature.
        names = code.co_varnames[:code.co_argcount + code.co_kwonlyargcount]
        return "memory" in names
    try:
        return "memory" in inspect.signature(fn).parameters
    except (TypeError, ValueError):  # builtins without a signature
        return False


def is_async(fn: Any) -> bool:
    """Whether calling ``fn`` gives a coroutine (an async def or an async ``__call__``)."""
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - an object with an async __call__
    )


def _name_of(fn: Any) -> str:
    """A name that is the same in every process: it is recorded inside workflows."""
    if isinstance(fn, Step):
        return fn.name
    if isinstance(fn, functools.partial):
        return _name_of(fn.func)
    name = getattr(fn, "__name__", None)
    # Never repr(): an address in a recorded name would differ on replay.
    return name if isinstance(name, str) else type(fn).__name__
