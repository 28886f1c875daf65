"""``spawn``: start work now (or queue it, in deterministic mode) and get a :class:`Future`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable, Mapping
from typing import Any, TypeVar, overload

from ._deterministic import SCHEDULER
from ._future import Future
from ._kernel import discard, is_awaitable, start
from ._parallel import Results, parallel

__all__ = ["spawn"]

T = TypeVar("T")


@overload
def spawn(aw: Awaitable[T], /) -> Future[T]: ...
@overload
def spawn(aws: Mapping[str, Awaitable[T]], /) -> Future[Results[T]]: ...
@overload
def spawn(aws: Iterable[Awaitable[T]], /) -> Future[list[T]]: ...
def spawn(aw: Any, /) -> Future[Any]:
    """Start ``aw`` now and return a :class:`Future` for its value.

    ``spawn([a, b, c])`` (any iterable) starts them all and returns one future
    of the list of values; ``spawn({"a": a, ...})`` one future of a
    :class:`Results` mapping. Both are ``spawn(parallel(...))``: the first
    failure cancels the others. Already-spawned futures are fine items, which
    is how Lumen's ``await [spawn(a()), spawn(b())]`` reads in Python::

        nested = [legato.spawn(a()), legato.spawn(b())]
        results = await legato.parallel(nested)        # or: await legato.spawn(nested)

    Example::

        f1 = legato.spawn(long_task_a())
        f2 = legato.spawn(long_task_b())
        ...                                            # other work meanwhile
        r1, r2 = await f1, await f2

    The future is not bound to a scope: it runs on if the spawning code
    returns, like an :class:`asyncio.Task` (keep a reference, await or cancel
    it). Under :func:`deterministic` it doesn't start yet: it waits in a FIFO
    queue until a future of the block is awaited. Inside a workflow the task
    gets its own position scope, in spawn order.

    Raises:
        TypeError: ``aw`` is neither awaitable nor an iterable of awaitables.
        RuntimeError: no event loop is running.
    """
    if isinstance(aw, Future):
        return aw
    if not is_awaitable(aw):
        if isinstance(aw, Mapping):
            aw = parallel(aw)
        elif isinstance(aw, Iterable) and not isinstance(aw, str):
            aw = parallel(list(aw))
        else:
            raise TypeError(
                f"spawn() takes an awaitable or an iterable of awaitables, not "
                f"{type(aw).__name__}; did you pass a function instead of calling it?"
            )
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        discard(aw)
        raise RuntimeError("spawn() needs a running event loop; call it from async code") from None
    scheduler = SCHEDULER.get()
    if scheduler is None or isinstance(aw, asyncio.Future):
        return Future(start(loop, aw, None))
    gate: asyncio.Future[None] = loop.create_future()
    task = loop.create_task(_gated(gate, aw))
    if asyncio.iscoroutine(aw):
        # Cancelled while queued (perhaps before the task's first step, when no
        # code of _gated runs at all): close the coroutine, it never ran.
        task.add_done_callback(lambda _: aw.close())
    future: Future[Any] = Future(task, gate, scheduler)
    scheduler.queue.append(future)
    return future


async def _gated(gate: asyncio.Future[None], aw: Awaitable[T]) -> T:
    await gate
    return await aw
