"""Give every task created inside a workflow its own position scope.

Plain ``asyncio.gather`` / ``create_task`` inside a workflow make branches
whose durable calls interleave in whatever order they finish. The loop's task
factory runs synchronously at creation, in creation order, which is
deterministic: there each new task gets a copied context holding a child
scope, so its positions are the same run after run.
"""

from __future__ import annotations

import asyncio
import contextvars
import weakref
from collections.abc import AsyncGenerator, Coroutine, Generator
from typing import Any

from ...flow._hooks import RECORDER
from ._scope import Scope

__all__ = ["POSITIONS", "install", "uninstall"]

_TaskFactory = Any  # asyncio's factory type differs across 3.11-3.13


#: The branch position of each task made in workflow code (for a recorded ``asyncio.wait``).
POSITIONS: weakref.WeakKeyDictionary[asyncio.Future[Any], str] = weakref.WeakKeyDictionary()


async def _agen() -> AsyncGenerator[None, None]:
    yield


def _closing_types() -> tuple[type, ...]:
    gen = _agen()
    aclose, asend = gen.aclose(), gen.asend(None)
    kinds = (type(aclose), type(asend))
    aclose.close()
    asend.close()
    return kinds


# The loop closes an async generator left early (``break`` out of ``async for``)
# in a task it creates when the garbage collector finds it: at a moment no
# replay can reproduce, so such a task must not take a position.
_INTERPRETER_TASKS = _closing_types()


class _ScopedTaskFactory:
    __slots__ = ("previous", "users")

    def __init__(self, previous: _TaskFactory | None) -> None:
        self.previous = previous
        self.users = 0

    def __call__(
        self,
        loop: asyncio.AbstractEventLoop,
        coro: Coroutine[Any, Any, Any] | Generator[Any, None, Any],
        **kwargs: Any,
    ) -> asyncio.Future[Any]:
        context = kwargs.get("context")
        if context is None:
            scope = RECORDER.get()
            if isinstance(scope, Scope):
                context = contextvars.copy_context()
                interpreter = isinstance(coro, _INTERPRETER_TASKS)
                scope = None if interpreter else _branch(scope, coro)
                context.run(RECORDER.set, scope)
                kwargs["context"] = context
        else:  # an explicit context (a primitive's fork) already carries its scope
            scope = context.get(RECORDER)
        if self.previous is not None:
            task: asyncio.Future[Any] = self.previous(loop, coro, **kwargs)
        else:
            task = asyncio.Task(coro, loop=loop, **kwargs)
        if isinstance(scope, Scope):
            _count_branch(scope, task)
        return task


def _branch(scope: Scope, coro: Any) -> Scope:
    try:
        return scope.branch(getattr(coro, "__qualname__", ""))
    except BaseException:
        coro.close()  # never started: no "was never awaited" warning on top of the error
        raise


def _count_branch(scope: Scope, task: asyncio.Future[Any]) -> None:
    # A run with branches in flight is never unloaded (see Run.can_suspend).
    run = scope.run
    run.branches += 1
    POSITIONS[task] = scope.prefix[:-1]
    task.add_done_callback(run.branch_ended)


def install(loop: asyncio.AbstractEventLoop) -> None:
    """Install the scoped factory on ``loop`` (counted: nested runtimes share it)."""
    factory = loop.get_task_factory()
    if not isinstance(factory, _ScopedTaskFactory):
        factory = _ScopedTaskFactory(factory)
        loop.set_task_factory(factory)
    factory.users += 1


def uninstall(loop: asyncio.AbstractEventLoop) -> None:
    """Undo :func:`install`; the previous factory returns with the last user."""
    factory = loop.get_task_factory()
    if isinstance(factory, _ScopedTaskFactory):
        factory.users -= 1
        if factory.users == 0:
            loop.set_task_factory(factory.previous)
