"""``parallel``: run awaitables concurrently; every result, in argument order."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable, Mapping
from typing import Any, Literal, TypeVar, final, overload

from ._deterministic import SCHEDULER
from ._hooks import UNDECIDED, Fork
from ._kernel import ALL, FAILURE, Branches, awaitables, discard_all, open_fork, outcome

__all__ = ["Results", "parallel"]

T = TypeVar("T")
T1 = TypeVar("T1")
T2 = TypeVar("T2")
T3 = TypeVar("T3")
T4 = TypeVar("T4")
T5 = TypeVar("T5")


@final
class Results(dict[str, T]):
    """Named results of ``parallel(a=..., b=...)``: a ``dict`` that also allows ``results.a``.

    Names that clash with ``dict`` methods (``items``, ``keys``, ``get``, ...)
    are reached with ``results["items"]``.
    """

    __slots__ = ()

    def __getattr__(self, name: str) -> T:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"no result named {name!r}; the names are {list(self)}") from None

    def __repr__(self) -> str:
        return f"Results({dict.__repr__(self)})"


@overload
async def parallel(
    a1: Awaitable[T1], /, *, limit: int | None = ..., return_exceptions: Literal[False] = ...
) -> tuple[T1]: ...
@overload
async def parallel(
    a1: Awaitable[T1],
    a2: Awaitable[T2],
    /,
    *,
    limit: int | None = ...,
    return_exceptions: Literal[False] = ...,
) -> tuple[T1, T2]: ...
@overload
async def parallel(
    a1: Awaitable[T1],
    a2: Awaitable[T2],
    a3: Awaitable[T3],
    /,
    *,
    limit: int | None = ...,
    return_exceptions: Literal[False] = ...,
) -> tuple[T1, T2, T3]: ...
@overload
async def parallel(
    a1: Awaitable[T1],
    a2: Awaitable[T2],
    a3: Awaitable[T3],
    a4: Awaitable[T4],
    /,
    *,
    limit: int | None = ...,
    return_exceptions: Literal[False] = ...,
) -> tuple[T1, T2, T3, T4]: ...
@overload
async def parallel(
    a1: Awaitable[T1],
    a2: Awaitable[T2],
    a3: Awaitable[T3],
    a4: Awaitable[T4],
    a5: Awaitable[T5],
    /,
    *,
    limit: int | None = ...,
    return_exceptions: Literal[False] = ...,
) -> tuple[T1, T2, T3, T4, T5]: ...
@overload
async def parallel(
    *aws: Awaitable[T], limit: int | None = ..., return_exceptions: Literal[False] = ...
) -> tuple[T, ...]: ...
@overload
async def parallel(
    *aws: Awaitable[T], limit: int | None = ..., return_exceptions: Literal[True]
) -> tuple[T | BaseException, ...]: ...
@overload
async def parallel(
    named: Mapping[str, Awaitable[T]],
    /,
    *,
    limit: int | None = ...,
    return_exceptions: Literal[False] = ...,
) -> Results[T]: ...
@overload
async def parallel(
    named: Mapping[str, Awaitable[T]],
    /,
    *,
    limit: int | None = ...,
    return_exceptions: Literal[True],
) -> Results[T | BaseException]: ...
@overload
async def parallel(
    aws: Iterable[Awaitable[T]],
    /,
    *,
    limit: int | None = ...,
    return_exceptions: Literal[False] = ...,
) -> list[T]: ...
@overload
async def parallel(
    aws: Iterable[Awaitable[T]], /, *, limit: int | None = ..., return_exceptions: Literal[True]
) -> list[T | BaseException]: ...
@overload
async def parallel(
    *, limit: int | None = ..., return_exceptions: Literal[False] = ..., **named: Awaitable[T]
) -> Results[T]: ...
@overload
async def parallel(
    *, limit: int | None = ..., return_exceptions: Literal[True], **named: Awaitable[T]
) -> Results[T | BaseException]: ...
async def parallel(
    *aws: Any, limit: int | None = None, return_exceptions: bool = False, **named: Any
) -> Any:
    """Run awaitables concurrently and return every result, in argument order.

    Three forms, like Lumen's ``parallel`` block and ``parallel for``::

        page_a, page_b = await legato.parallel(fetch(a), fetch(b))        # a tuple
        pages = await legato.parallel(fetch(u) for u in urls)             # a list
        r = await legato.parallel(user=get_user(), posts=get_posts())     # Results
        r.user, r["posts"]

    ``parallel({"name": aw, ...})`` is the keyword form for names that aren't
    identifiers. Futures from :func:`spawn` are fine arguments, so
    ``await legato.parallel(list_of_futures)`` awaits "nested" futures.

    Unlike :func:`asyncio.gather`, ``parallel`` owns its branches: on the first
    failure it cancels the others, waits until they have finished, and raises
    the failure of the branch that comes first *in argument order* (the
    original exception, traceback intact). When several branches failed, a
    note on that exception (``__notes__``) lists the others. Cancelling the
    task awaiting ``parallel`` cancels every branch.

    Args:
        *aws: awaitables, or a single iterable (or mapping) of them.
        limit: run at most this many branches at once; the next starts when
            one finishes, in argument order.
        return_exceptions: collect each failure in its result slot instead of
            raising (a cancelled branch gives a ``CancelledError``).
        **named: awaitables by name; results come back as :class:`Results`.

    Returns:
        A tuple for positional awaitables, a list for one iterable, a
        :class:`Results` mapping for named ones.

    Raises:
        Exception: the first failure in argument order (unless
            ``return_exceptions``).
        TypeError: for an argument that isn't awaitable, or positional and
            named awaitables mixed.
        ValueError: for ``limit`` below 1.

    Inside a workflow each branch runs in its own position scope; a failure
    is recorded (the index of the branch whose error is raised) so a replay
    re-runs only that branch. Under :func:`deterministic` the branches run one
    at a time in argument order.
    """
    names: list[str] | None = None
    listed = False
    if named:
        if aws:
            discard_all(aws)
            discard_all(named.values())
            raise TypeError("parallel() takes awaitables positionally or by name, not both")
        names, items = list(named), list(named.values())
    elif len(aws) == 1 and isinstance(aws[0], Mapping):
        names, items = list(aws[0]), list(aws[0].values())
    else:
        items, listed = awaitables(aws, "parallel")
    if limit is not None and (type(limit) is not int or limit < 1):
        discard_all(items)
        raise ValueError(f"parallel(limit=...) must be a whole number of at least 1, not {limit!r}")
    values = await _run(items, limit or 0, return_exceptions) if items else []
    if names is not None:
        return Results(zip(names, values, strict=True))
    return values if listed else tuple(values)


async def _run(items: list[Any], limit: int, return_exceptions: bool) -> list[Any]:
    fork = open_fork("parallel", len(items))
    if SCHEDULER.get() is not None:
        limit = 1
    branches = Branches(items, fork, ALL if return_exceptions else FAILURE, limit)
    try:
        if fork is not None and fork.decision is not UNDECIDED:
            await _replay(branches, fork.decision)
            fork = None  # the decision is taken; a replay never records another
        branches.track_receives()
        branches.fill()
        while not branches.finished():
            await branches.wait()
            if branches.failed and not return_exceptions:
                return await _fail(branches, fork)
            fatal = branches.fatal() if not branches.finished() else None
            if fatal is not None:
                raise fatal
        tasks = branches.tasks
        branches.used = -2  # every value is returned
        if not return_exceptions:
            return [task.result() for task in tasks]  # type: ignore[union-attr]
        results: list[Any] = []
        for task in tasks:
            assert task is not None
            error = outcome(task)
            if error is not None and not isinstance(error, Exception | asyncio.CancelledError):
                raise error
            results.append(task.result() if error is None else error)
        return results
    finally:
        await branches.aclose()


async def _replay(branches: Branches, decision: Any) -> None:
    """Re-run only the branch whose failure was recorded, and raise it again."""
    n = len(branches.items)
    if type(decision) is not int or not 0 <= decision < n:
        raise ValueError(
            f"the recorded decision {decision!r} doesn't fit parallel() with {n} branches; the "
            "workflow's code changed since it was recorded (guard the change with legato.patched)"
        )
    wake = branches.wake
    branches.wake = FAILURE | 1
    task = branches.start(decision)
    while not task.done():
        await branches.wait()
    branches.wake = wake
    error = outcome(task)
    if error is not None:
        branches.cancel()
        raise error
    # The branch succeeded this time: go on as a live call, without recording.
    branches.failed = 0


async def _fail(branches: Branches, fork: Fork | None) -> list[Any]:
    """Cancel the rest, wait for it, and raise the first failure in argument order."""
    branches.cancel()
    await branches.join()
    fatal = branches.fatal()
    if fatal is not None:
        raise fatal
    index, error = _first_failure(branches)
    if fork is not None and isinstance(error, Exception):
        await fork.decide(index)
    try:
        raise error
    finally:
        # the traceback keeps this frame: were it to keep the error, that would be a
        # cycle (error -> traceback -> frame -> error) left to the garbage collector
        del error


def _first_failure(branches: Branches) -> tuple[int, BaseException]:
    """The first failure in argument order, noting the others on it."""
    ours = branches.ours
    failures: list[tuple[int, BaseException]] = []  # before the cancellation
    cleanup: list[tuple[int, BaseException]] = []  # raised by branches while being cancelled
    for i, task in enumerate(branches.tasks):
        if task is None or (i in ours and task.cancelled()):
            continue
        error = outcome(task)
        if error is not None:
            (cleanup if i in ours else failures).append((i, error))
    index, first = failures[0]
    others = failures[1:] + cleanup
    if others:
        listed = "; ".join(f"branch {i}: {e!r}" for i, e in others[:8])
        more = "; ..." if len(others) > 8 else ""
        first.add_note(f"parallel(): {len(others)} other branch(es) failed too: {listed}{more}")
    return index, first
