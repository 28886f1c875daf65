"""``@legato.step``: a function whose outcome is checkpointed inside workflows."""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Generic, ParamSpec, TypeVar, final, overload

from .._duration import Duration, to_seconds
from .._errors import SerializationError
from ..flow._hooks import RECORDER
from ._context import Scope

__all__ = ["Step", "step"]

P = ParamSpec("P")
R = TypeVar("R")


@final
class Step(Generic[P, R]):
    """A function made durable by :func:`step`. Calling it returns a coroutine."""

    def __init__(
        self, fn: Callable[P, Awaitable[R]] | Callable[P, R], *, name: str | None,
        timeout: Duration | None,
    ) -> None:
        self.fn = fn
        self.name = name or fn.__name__
        self.timeout = None if timeout is None else to_seconds(timeout)
        self._is_async = inspect.iscoroutinefunction(fn)
        functools.update_wrapper(self, fn)

    def __repr__(self) -> str:
        return f"<legato.step {self.name!r}>"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Awaitable[R]:
        return self._run(args, kwargs)

    async def _run(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
        scope = RECORDER.get()
        if not isinstance(scope, Scope):
            return await self._invoke(args, kwargs)
        run = scope.run
        position = scope.next_position()
        record = run.replay(position, "step", self.name)
        if record is not None:
            outcome: R = run.outcome(record)
            return outcome
        # The body is ordinary code: nothing inside it is recorded, and tasks
        # it creates are not workflow branches.
        token = RECORDER.set(None)
        try:
            value = await self._invoke(args, kwargs)
        except Exception as exc:
            RECORDER.reset(token)
            await run.record_error(position, "step", self.name, exc)
            raise
        RECORDER.reset(token)
        try:
            await run.record(position, "step", self.name, value)
        except SerializationError as exc:
            # Recorded, so a replay fails the same way instead of running again.
            await run.record_error(position, "step", self.name, exc)
            raise
        return value

    async def _invoke(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
        if self._is_async:
            call: Awaitable[R] = self.fn(*args, **kwargs)  # type: ignore[assignment]
        else:
            # A thread can't be interrupted: on timeout the wait ends, the thread runs on.
            call = asyncio.to_thread(self.fn, *args, **kwargs)  # type: ignore[arg-type]
        if self.timeout is None:
            return await call
        async with asyncio.timeout(self.timeout):
            return await call


@overload
def step(fn: Callable[P, Awaitable[R]], /) -> Step[P, R]: ...
@overload
def step(fn: Callable[P, R], /) -> Step[P, R]: ...
@overload
def step(
    *, name: str | None = None, timeout: Duration | None = None
) -> Callable[[Callable[P, Awaitable[R]] | Callable[P, R]], Step[P, R]]: ...


def step(
    fn: Callable[P, Any] | None = None, /, *, name: str | None = None,
    timeout: Duration | None = None,
) -> Any:
    """Make a function a durable step: inside a workflow its outcome is checkpointed.

    The first time a workflow reaches the call, the function runs and its
    return value (or exception) is committed before the workflow goes on; when
    the workflow is replayed after a crash, the recorded outcome is returned
    and the function does not run again. Outside a workflow it is just the
    function. A plain ``def`` runs in a thread.

    Example::

        @legato.step
        async def fetch(url: str) -> str:
            async with httpx.AsyncClient() as client:
                return (await client.get(url)).text

        @legato.step(name="charge", timeout=30)
        def charge(customer: str, cents: int) -> str: ...

    Args:
        name: the name recorded in the history (default: the function's ``__name__``).
            Renaming a step that running workflows have recorded is a
            ``NonDeterminismError`` on their replay: pass the old name.
        timeout: seconds (or ``"30s"``) per call; the call then raises ``TimeoutError``.

    Unlike ``@workflow``, a step is a unit of work, not of orchestration: durable
    calls inside a step are not recorded separately.
    """
    if fn is not None:
        return Step(fn, name=name, timeout=timeout)
    return lambda f: Step(f, name=name, timeout=timeout)
