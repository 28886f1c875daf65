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
from collections.abc import Coroutine, Generator
from typing import Any

from ..flow._hooks import RECORDER
from ._context import Scope

__all__ = ["install", "uninstall"]

_TaskFactory = Any  # asyncio's factory type differs across 3.11-3.13


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
        if kwargs.get("context") is None:
            # An explicit context (a primitive's fork) already carries its scope.
            scope = RECORDER.get()
            if isinstance(scope, Scope):
                context = contextvars.copy_context()
                context.run(RECORDER.set, scope.branch())
                kwargs["context"] = context
        if self.previous is not None:
            task: asyncio.Future[Any] = self.previous(loop, coro, **kwargs)
            return task
        return asyncio.Task(coro, loop=loop, **kwargs)


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
