"""Tasks of legato's own machinery, which take no position in a workflow."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Coroutine
from typing import Any, TypeVar

from ...flow._hooks import RECORDER

__all__ = ["detached"]

T = TypeVar("T")


def detached(coro: Coroutine[Any, Any, T], name: str | None = None) -> asyncio.Task[T]:
    """A task of legato's own machinery: it takes no position and is no branch.

    A task created from workflow code would otherwise become a branch and
    shift the positions of everything after it, differently on replay.
    """
    context = contextvars.copy_context()
    context.run(RECORDER.set, None)
    return asyncio.get_running_loop().create_task(coro, name=name, context=context)
