"""The kernel under every primitive: start branches, wait, cancel and await the rest.

A :class:`Branches` owns the awaitables of one primitive call. It starts them
(all at once, or ``limit`` at a time), in their own position scopes when a
workflow :class:`~._hooks.Fork` is given, wakes the primitive only on the
completions it cares about, and on :meth:`Branches.aclose` cancels what still
runs, closes coroutines that never started (so nothing warns "never
awaited"), retrieves every exception (so nothing warns "never retrieved") and
waits until every task it touched has finished. Cancelling the task that runs
the primitive cancels all branches; the cancellation is re-raised once they
have finished.

Rules shared by all primitives:

- A coroutine argument becomes a task started by the primitive (in branch
  ``i``'s scope inside a workflow). A task, future or :class:`~._future.Future`
  argument is already running: it is used as it is, keeps the scope it was
  created in, and is cancelled like any branch when no longer needed. Other
  awaitables are wrapped in a task.
- Only :class:`Exception` counts as a branch *failure*. Any other
  :class:`BaseException` from a branch (``KeyboardInterrupt``, ``SystemExit``,
  the durable layer's unwinding signal) is propagated at once, after the other
  branches are cancelled and awaited, and never recorded as a decision.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import deque
from collections.abc import Awaitable, Iterable, Sequence
from contextvars import Context
from functools import partial
from types import CoroutineType
from typing import Any, Final, final

from legato._errors import AllFailed

from ._channel import RECEIVE_CODE, Channel, channel_of
from ._future import Future
from ._hooks import RECORDER, Fork

__all__ = [
    "FAILURE",
    "SUCCESS",
    "ANY",
    "ALL",
    "Branches",
    "all_failed",
    "awaitables",
    "discard",
    "decidable",
    "discard_all",
    "durable_timer",
    "is_awaitable",
    "open_fork",
    "outcome",
    "start",
]

#: Wake masks: when should :meth:`Branches.wait` return?
SUCCESS: Final = 1  # a branch returned a value
FAILURE: Final = 2  # a branch raised (or was cancelled by someone else)
ANY: Final = 3  # any branch finished
ALL: Final = 0  # only once every branch has finished


def open_fork(kind: str, count: int) -> Fork | None:
    """The workflow fork for a primitive, or ``None`` outside workflows."""
    recorder = RECORDER.get()
    return None if recorder is None else recorder.fork(kind, count)


def is_awaitable(value: object) -> bool:
    return isinstance(value, asyncio.Future | Future) or inspect.isawaitable(value)


def awaitables(args: tuple[Any, ...], name: str) -> tuple[list[Any], bool]:
    """The awaitables of a call made as ``f(a, b)`` or ``f([a, b])``; True for the latter."""
    if len(args) == 1:
        only = args[0]
        if not is_awaitable(only) and isinstance(only, Iterable) and not isinstance(only, str):
            return list(only), True
    return list(args), False


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def start(
    loop: asyncio.AbstractEventLoop, awaitable: Any, context: Context | None
) -> asyncio.Future[Any]:
    """A future for ``awaitable``: a new task for a coroutine, the task itself for a task."""
    if type(awaitable) is CoroutineType:
        return loop.create_task(awaitable, context=context)
    if isinstance(awaitable, asyncio.Future):
        return awaitable
    if isinstance(awaitable, Future):
        gate = awaitable._gate
        if gate is None or gate.done():
            return awaitable._task
        return loop.create_task(_await(awaitable), context=context)
    if asyncio.iscoroutine(awaitable):
        return loop.create_task(awaitable, context=context)
    if inspect.isawaitable(awaitable):
        return loop.create_task(_await(awaitable), context=context)
    raise TypeError(
        f"expected an awaitable (a coroutine, task or future), got {type(awaitable).__name__}: "
        f"{awaitable!r}; did you pass a function instead of calling it?"
    )


def discard(awaitable: Any) -> asyncio.Future[Any] | None:
    """Drop an awaitable that will never be awaited; return a task that must still finish."""
    if asyncio.iscoroutine(awaitable):
        awaitable.close()
        return None
    if isinstance(awaitable, Future):
        awaitable = awaitable._task
    if isinstance(awaitable, asyncio.Future):
        if not awaitable.done():
            awaitable.cancel()
            return awaitable
        if not awaitable.cancelled():
            awaitable.exception()  # retrieved: nothing logs "never retrieved"
    return None


def discard_all(items: Iterable[Any]) -> None:
    """Drop awaitables before anything started (after a bad argument)."""
    for item in items:
        discard(item)


def outcome(task: asyncio.Future[Any]) -> BaseException | None:
    """``None`` for a task that returned, else what it raised (``CancelledError`` if cancelled)."""
    if task.cancelled():
        return asyncio.CancelledError()
    return task.exception()


def decidable(task: asyncio.Future[Any]) -> bool:
    """Whether a finished branch's outcome is a decision to record: a value or an Exception.

    (A helper rather than a local ``error``: a frame that goes on to raise the
    task's error must not hold it, or error, traceback and frame make a cycle.)
    """
    error = outcome(task)
    return error is None or isinstance(error, Exception)


@final
class Branches:
    """The branches of one primitive call: start, wait for completions, cancel, clean up."""

    __slots__ = (
        "callback",
        "channels",
        "closing",
        "done",
        "expired",
        "failed",
        "fork",
        "index",
        "items",
        "limit",
        "loop",
        "next",
        "order",
        "ours",
        "tasks",
        "unfinished",
        "used",
        "waiter",
        "wake",
        "woken",
    )

    def __init__(self, items: Sequence[Any], fork: Fork | None, wake: int, limit: int = 0) -> None:
        if limit:  # branches start from done-callbacks, where a TypeError would be lost
            for i, item in enumerate(items):
                if type(item) is not CoroutineType and not is_awaitable(item):
                    discard_all(items)
                    raise TypeError(
                        f"argument {i} is not awaitable: {type(item).__name__} {item!r}; "
                        "pass coroutines (call the async function), tasks or futures"
                    )
        self.items = items
        self.fork = fork
        self.wake = wake
        self.limit = limit
        self.loop = asyncio.get_running_loop()
        self.tasks: list[asyncio.Future[Any] | None] = [None] * len(items)
        #: Indices of finished branches, in the order they finished.
        self.done: deque[int] = deque()
        self.unfinished = 0
        self.next = 0
        self.waiter: asyncio.Future[None] | None = None
        self.woken = False
        self.closing = False
        self.expired = False
        #: How many branches failed (raised, or were cancelled by someone else) before closing.
        self.failed = 0
        #: Indices of the branches this group cancelled.
        self.ours: set[int] = set()
        #: ``channel.receive()`` branches (see :meth:`track_receives`).
        self.channels: dict[int, Channel[Any]] | None = None
        self.order: list[int] = []
        #: The branch whose value the primitive returns (-1: none, -2: all).
        self.used = -2
        #: Each watched task's index, and the one done-callback they share (see _watch).
        self.index: dict[asyncio.Future[Any], int] = {}
        self.callback: Any = None

    # -- starting -------------------------------------------------------

    def track_receives(self) -> None:
        """Put back items taken by ``channel.receive()`` branches whose value is dropped.

        Call before starting, then set :attr:`used` to the branch whose value
        is returned; :meth:`aclose` returns the items of the others to the
        front of their channels, latest first, so none is lost and FIFO holds.
        """
        channels = None
        for i, item in enumerate(self.items):
            if type(item) is CoroutineType and item.cr_code is RECEIVE_CODE:
                channel = channel_of(item)
                if channel is not None:
                    if channels is None:
                        channels = {}
                    channels[i] = channel
        self.channels = channels
        self.used = -1

    def start(self, i: int) -> asyncio.Future[Any]:
        """Start branch ``i`` (in its scope inside a workflow)."""
        fork = self.fork
        task = start(self.loop, self.items[i], None if fork is None else fork.context(i))
        self.tasks[i] = task
        self.unfinished += 1
        self._watch(i, task)
        return task

    def _watch(self, i: int, task: asyncio.Future[Any]) -> None:
        """Call :meth:`_on_done` when branch ``i``'s task finishes.

        One bound method serves every branch (a ``partial`` each would be one
        more object per branch for the garbage collector to walk while the
        branches run: a tenth of a 10,000-way fan-out's time). It makes a
        cycle with this group, which :meth:`_release` breaks at the end.
        """
        if task in self.index:  # the same task passed twice: a callback of its own
            task.add_done_callback(partial(self._on_done, i))
            return
        self.index[task] = i
        callback = self.callback
        if callback is None:
            callback = self.callback = self._on_task_done
        task.add_done_callback(callback)

    def _on_task_done(self, task: asyncio.Future[Any]) -> None:
        self._on_done(self.index[task], task)

    def _release(self) -> None:
        """Every branch finished: no callback will come, drop the group's own cycle."""
        self.callback = None

    def _forget(self) -> None:
        """Closed: let go of the tasks, in place (primitives hold the list too).

        An error a primitive raises keeps its frames alive through its
        traceback, and those frames hold this group; were the group to keep
        the tasks, the failed one's error (the raised one, or one of an
        ``AllFailed``) would lead back to that traceback: a reference cycle
        holding every branch's task, coroutine and traceback, which only the
        garbage collector can free.
        """
        self._release()
        self.tasks[:] = [None] * len(self.tasks)
        self.index.clear()

    def fill(self) -> None:
        """Start branches in argument order until ``limit`` run at once (0: all)."""
        items, tasks = self.items, self.tasks
        n = len(items)
        limit = self.limit
        i = self.next
        if not limit:
            while i < n:
                if tasks[i] is None:
                    self.next = i + 1
                    self.start(i)
                i += 1
        else:
            while i < n and self.unfinished < limit:
                if tasks[i] is None:
                    self.next = i + 1
                    self.start(i)
                i += 1
        self.next = i

    def finished(self) -> bool:
        """Whether every branch has been started and has finished."""
        return not self.unfinished and self.next >= len(self.items)

    # -- waiting --------------------------------------------------------

    def _on_done(self, i: int, task: asyncio.Future[Any]) -> None:
        self.unfinished -= 1
        self.done.append(i)
        if self.channels is not None:
            self.order.append(i)
        if task.cancelled():
            hit = FAILURE
            fatal = False
        else:
            error = task.exception()  # also marks it retrieved
            hit = SUCCESS if error is None else FAILURE
            fatal = error is not None and not isinstance(error, Exception)
        if self.closing:
            if not self.unfinished:
                self._wake()
            return
        if hit == FAILURE:
            self.failed += 1
        if self.wake & hit or fatal:
            self._wake()
        else:
            if self.limit and not self.woken:  # once woken, the primitive decides what next
                self.fill()
            if not self.unfinished:
                self._wake()

    def _wake(self) -> None:
        self.woken = True
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def expire(self) -> None:
        """Timer callback: mark the group expired and wake the primitive."""
        self.expired = True
        self._wake()

    async def wait(self) -> None:
        """Wait for a completion matching ``wake``, a fatal error, expiry, or the last branch.

        With ``limit``, branches that finish without waking the primitive are
        replaced at once; after a wake-up the primitive calls :meth:`fill` to
        go on.
        """
        if not self.woken:
            self.waiter = waiter = self.loop.create_future()
            await waiter
        self.woken = False

    def fatal(self) -> BaseException | None:
        """The first non-``Exception`` error a branch raised, if any, in argument order."""
        ours = self.ours
        for i, task in enumerate(self.tasks):
            if task is not None and task.done() and not task.cancelled() and i not in ours:
                error = task.exception()
                if error is not None and not isinstance(error, Exception):
                    return error
        return None

    # -- closing --------------------------------------------------------

    def cancel(self, keep: int = -1) -> None:
        """Close unstarted coroutines and cancel every unfinished branch but ``keep``.

        Idempotent: a branch is cancelled once, so that calling this again
        (e.g. on a second outer cancellation) never interrupts its cleanup.
        """
        tasks = self.tasks
        if not self.closing:
            self.closing = True
            items = self.items
            for i in range(len(items)):
                if tasks[i] is None and i != keep:
                    task = discard(items[i])
                    if task is not None:
                        tasks[i] = task
                        self.unfinished += 1
                        self._watch(i, task)
            self.next = len(items)
        if self.unfinished:  # each branch is cancelled once: a second cancel would cut its cleanup
            ours = self.ours
            for i, task in enumerate(tasks):
                if task is not None and i != keep and i not in ours and not task.done():
                    ours.add(i)
                    task.cancel()

    async def join(self) -> None:
        """Wait until every started branch has finished (cancellation propagates)."""
        while self.unfinished:
            self.woken = False
            self.waiter = waiter = self.loop.create_future()
            await waiter
        self.woken = False
        self._release()

    async def aclose(self) -> None:
        """Cancel what still runs and wait until it has finished; never leaves a task behind.

        If the calling task is cancelled meanwhile, the wait goes on (the
        branches are already cancelled) and the cancellation is re-raised at
        the end.
        """
        if not self.unfinished and self.next >= len(self.items):
            if self.channels is not None:
                self._put_back()
            self._forget()
            return
        self.cancel()
        interrupted: asyncio.CancelledError | None = None
        while self.unfinished:
            self.waiter = waiter = self.loop.create_future()
            try:
                await waiter
            except asyncio.CancelledError as exc:
                interrupted = exc
        self.woken = False
        if self.channels is not None:
            self._put_back()
        self._forget()
        if interrupted is not None:
            raise interrupted

    def _put_back(self) -> None:
        channels, tasks, used = self.channels, self.tasks, self.used
        assert channels is not None
        self.channels = None
        if used == -2:
            return
        for i in reversed(self.order):
            task = tasks[i]
            if (
                i != used
                and i in channels
                and task is not None
                and not task.cancelled()
                and task.exception() is None
            ):
                channels[i]._put_back(task.result())

    async def only(self, index: int) -> asyncio.Future[Any]:
        """Replay: run branch ``index`` alone, discarding the others; return its finished task."""
        n = len(self.items)
        if type(index) is not int or not 0 <= index < n:
            discard_all(self.items)
            raise ValueError(
                f"the recorded decision {index!r} doesn't fit {n} branches; the workflow's "
                "code changed since it was recorded (guard the change with legato.patched)"
            )
        task = self.start(index)
        self.cancel(keep=index)
        await self.join()
        return task


def all_failed(kind: str, branches: Branches) -> BaseException:
    """The error for a race or vote whose branches all failed (argument order)."""
    errors = [
        error
        for task in branches.tasks
        if task is not None
        for error in (outcome(task),)
        if isinstance(error, Exception)
    ]
    if not errors:
        return asyncio.CancelledError(f"every branch of {kind}() was cancelled")
    return AllFailed(
        f"all {len(branches.items)} branches of {kind}() failed; .exceptions holds each failure in "
        "argument order. Catch legato.AllFailed, or handle one error type with except*",
        errors,
    )


async def durable_timer(seconds: float) -> None:
    """A workflow timer branch: a durable sleep in the scope of the branch that runs it.

    (``recorder.sleep`` must be looked up inside the branch's context: the
    parent's recorder would take the position in the parent's scope.)
    """
    recorder = RECORDER.get()
    assert recorder is not None, "a durable timer runs only inside a workflow"
    await recorder.sleep(seconds)
