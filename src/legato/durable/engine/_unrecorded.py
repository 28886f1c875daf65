"""The store, as workflow code calls it: outside the workflow's positions.

A store's driver may create tasks of its own while serving a call (asyncpg's
pool releases connections through ``asyncio.shield``). Made inside a
workflow, such a task would be counted by the task factory as a branch and
take a position, shifting every later durable call between a first run and
its replay. So the engine calls the store through :func:`unrecorded`, and a
store never needs to know about workflows.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, cast

from ...flow._hooks import RECORDER
from ...store import Store

__all__ = ["unrecorded"]


def unrecorded(store: Store) -> Store:
    """``store`` with every ``async`` method run outside any workflow's positions.

    >>> engine_store = unrecorded(open_store("legato.db"))
    """
    return cast(Store, _Unrecorded(store))


class _Unrecorded:
    def __init__(self, store: Store) -> None:
        self._store = store

    def __repr__(self) -> str:
        return repr(self._store)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._store, name)
        if not callable(value):
            return value  # attributes (they may change) are read each time
        if inspect.iscoroutinefunction(value):
            value = _outside(value)
        # Methods are looked up once: append, on every durable step, pays nothing.
        setattr(self, name, value)
        return value


def _outside(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(method)
    async def call(*args: Any, **kwargs: Any) -> Any:
        token = RECORDER.set(None)
        try:
            return await method(*args, **kwargs)
        finally:
            RECORDER.reset(token)

    return call
