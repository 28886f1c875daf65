"""``Pool``: a fixed number of workers and a bounded queue of jobs (Beluga's worker pools)."""

from __future__ import annotations

import asyncio
import contextvars
import inspect
from collections import deque
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, TypeVar, final

from ..durable import Step
from ..flow._hooks import RECORDER
from ._runnable import is_async

__all__ = ["Pool"]

T = TypeVar("T")


@final
class _Job:
    __slots__ = ("args", "context", "fn", "future", "kwargs", "task")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                 future: asyncio.Future[Any], context: contextvars.Context) -> None:
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.future = future
        self.context = context
        self.task: asyncio.Task[Any] | None = None


@final
class Pool:
    """Run submitted jobs on at most ``size`` workers, with a bounded queue.

    Example::

        async with legato.Pool(10) as pool:           # Beluga: NewEnhancedScheduler(10)
            future = await pool.submit(fetch, url)    # waits while the queue is full
            pages = await pool.map(fetch, urls)       # results in input order
            page = await future
        # leaving the block waits for every job (close); on an error it cancels them (stop)

    Args:
        size: how many jobs run at once.
        maxsize: how many submitted jobs may wait for a worker; ``submit``
            waits (back-pressure) while that many are waiting. Default:
            ``size``; ``0`` means no bound (like ``asyncio.Queue``).

    ``submit`` is a coroutine because of back-pressure: it returns once the
    job has a worker or a place in the queue, with an ``asyncio.Future`` for
    its result. Jobs start in submission order. Cancelling a job's future
    cancels the job. A plain ``def`` runs in a thread.

    Inside a workflow each job takes the next position of the submitting
    code when it is submitted and its durable calls are numbered under it,
    so which worker runs it and when doesn't matter on replay; as anywhere in
    a workflow, only ``@legato.step`` calls inside jobs are recorded.
    """

    __slots__ = ("_active", "_closed", "_idle", "_room", "_waiting", "maxsize", "size")

    def __init__(self, size: int, *, maxsize: int | None = None) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"a Pool needs at least one worker: size={size!r}")
        if maxsize is None:
            maxsize = size
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 0:
            raise ValueError(f"maxsize must be 0 (no bound) or more, not {maxsize!r}")
        self.size = size
        self.maxsize = maxsize
        self._active: set[_Job] = set()
        self._waiting: deque[_Job] = deque()
        self._room: deque[asyncio.Future[None]] = deque()  # submitters waiting for room
        self._idle: asyncio.Future[None] | None = None  # close() waits on it
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (f"<Pool size={self.size} running={len(self._active)} "
                f"waiting={len(self._waiting)} {state}>")

    @property
    def running(self) -> int:
        """How many jobs are running now."""
        return len(self._active)

    @property
    def waiting(self) -> int:
        """How many submitted jobs wait for a worker."""
        return len(self._waiting)

    async def __aenter__(self) -> Pool:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc is None:
            await self.close()
        else:
            await self.stop()

    async def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
                     ) -> asyncio.Future[Any]:
        """Queue ``fn(*args, **kwargs)``; waits while the queue is full. Returns its future.

        Example::

            future = await pool.submit(fetch, "https://example.com", timeout=5)
            page = await future

        Raises:
            RuntimeError: the pool is closed or stopped.
        """
        self._check_open()
        while self.maxsize and len(self._waiting) >= self.maxsize:
            await self._wait_for_room()
            self._check_open()
        loop = asyncio.get_running_loop()
        recorder = RECORDER.get()
        # Inside a workflow the job's scope is fixed now, in submission order.
        context = (contextvars.copy_context() if recorder is None
                   else recorder.fork("pool", 1).context(0))
        job = _Job(fn, args, kwargs, loop.create_future(), context)
        job.future.add_done_callback(lambda _: self._abandoned(job))
        if len(self._active) < self.size and not self._waiting:
            self._start(job)
        else:
            self._waiting.append(job)
        return job.future

    async def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        """``fn(item)`` for every item on the pool; the results in item order.

        Example::

            sizes = await pool.map(download, urls)

        Raises:
            The first failure in item order; this call's other jobs are cancelled.
        """
        futures: list[asyncio.Future[Any]] = []
        try:
            for item in items:
                futures.append(await self.submit(fn, item))
            return [await future for future in futures]
        except BaseException:
            for future in futures:
                if future.done() and not future.cancelled():
                    future.exception()  # seen here; don't log it as never retrieved
                future.cancel()
            raise

    async def close(self) -> None:
        """Take no more jobs and wait until every submitted job has finished."""
        self._closed = True
        self._wake_submitters()
        while self._active or self._waiting:
            self._idle = asyncio.get_running_loop().create_future()
            await self._idle

    async def stop(self) -> None:
        """Take no more jobs, cancel the waiting and running ones, and wait for them to end."""
        self._closed = True
        self._wake_submitters()
        while self._waiting:
            self._waiting.popleft().future.cancel()
        tasks = [job.task for job in self._active if job.task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    # -- the machinery ------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this Pool is closed; submit jobs inside its 'async with' block "
                               "(or before close()/stop())")

    async def _wait_for_room(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._room.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._give_room()  # room was given to us: pass it on
            else:
                self._room.remove(waiter)
            raise

    def _give_room(self) -> None:
        while self._room:
            waiter = self._room.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _wake_submitters(self) -> None:
        while self._room:
            waiter = self._room.popleft()
            if not waiter.done():
                waiter.set_result(None)  # they see the pool closed

    def _start(self, job: _Job) -> None:
        self._active.add(job)
        loop = asyncio.get_running_loop()
        job.task = loop.create_task(self._run(job), context=job.context)
        job.task.add_done_callback(lambda task: self._finished(job, task))

    async def _run(self, job: _Job) -> Any:
        fn = job.fn
        if isinstance(fn, Step) or is_async(fn):
            return await fn(*job.args, **job.kwargs)
        result = await asyncio.to_thread(fn, *job.args, **job.kwargs)
        if inspect.isawaitable(result):  # a lambda returning a coroutine, say
            result = await result
        return result

    def _finished(self, job: _Job, task: asyncio.Task[Any]) -> None:
        self._active.discard(job)
        future = job.future
        if task.cancelled():
            future.cancel()
        elif not future.done():
            exc = task.exception()
            if exc is None:
                future.set_result(task.result())
            else:
                future.set_exception(exc)
        else:
            task.exception()  # its future was cancelled: nobody wants the outcome
        self._next()

    def _abandoned(self, job: _Job) -> None:
        """A job's future was cancelled: cancel the job (a waiting one is skipped later)."""
        if job.future.cancelled() and job.task is not None and not job.task.done():
            job.task.cancel()

    def _next(self) -> None:
        while self._waiting and len(self._active) < self.size:
            job = self._waiting.popleft()
            if not job.future.done():
                self._start(job)
            self._give_room()
        idle = self._idle
        if not self._active and not self._waiting and idle is not None and not idle.done():
            idle.set_result(None)

