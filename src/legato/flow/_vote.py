"""``vote``: the most common result; failures don't vote."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Any, TypeVar, overload

from ._deterministic import SCHEDULER
from ._hooks import UNDECIDED
from ._kernel import ALL, SUCCESS, Branches, all_failed, awaitables, discard_all, open_fork

__all__ = ["vote"]

T = TypeVar("T")


@overload
async def vote(
    *aws: Awaitable[T], key: Callable[[T], Hashable] | None = ..., quorum: int | None = ...
) -> T: ...
@overload
async def vote(
    aws: Iterable[Awaitable[T]],
    /,
    *,
    key: Callable[[T], Hashable] | None = ...,
    quorum: int | None = ...,
) -> T: ...
async def vote(
    *aws: Any, key: Callable[[Any], Hashable] | None = None, quorum: int | None = None
) -> Any:
    """Return the most common result of the branches (by ``key(result)`` if given).

    Every branch that succeeds casts one vote; failed branches don't vote.
    Ties go to the answer first given by the earliest argument, and that
    argument's value is returned. With ``quorum=k`` the vote ends as soon as
    one answer has ``k`` votes and the other branches are cancelled; if no
    answer reaches ``k``, the most common one still wins once all are in.

    Example::

        answer = await legato.vote(model_a(q), model_b(q), model_c(q))
        label = await legato.vote(*(classify(text, m) for m in models),
                                  key=lambda r: r.label.lower(), quorum=2)

    Args:
        *aws: awaitables, or a single iterable of them.
        key: maps a result to what is counted; needed when results are
            unhashable (dicts, lists) or equal only loosely.
        quorum: votes that decide at once (1 to the number of branches).

    Returns:
        The winning value, as returned by its earliest argument.

    Raises:
        AllFailed: every branch failed.
        TypeError: a result (or key) isn't hashable; pass ``key=``.
        ValueError: no awaitables, or ``quorum`` out of range.

    Inside a workflow the index of the branch holding the winning value is
    recorded; a replay re-runs only that branch. Under :func:`deterministic`
    the branches run one at a time in argument order (and stop at the quorum).
    """
    items, _ = awaitables(aws, "vote")
    n = len(items)
    if not n:
        raise ValueError("vote() needs at least one awaitable")
    if quorum is not None and (type(quorum) is not int or not 1 <= quorum <= n):
        discard_all(items)
        raise ValueError(
            f"vote(quorum=...) must be between 1 and {n} (the branches), not {quorum!r}"
        )
    fork = open_fork("vote", n)
    limit = 1 if SCHEDULER.get() is not None else 0
    branches = Branches(items, fork, ALL if quorum is None else SUCCESS, limit)
    try:
        if fork is not None and fork.decision is not UNDECIDED:
            return (await branches.only(fork.decision)).result()
        branches.fill()
        tasks = branches.tasks
        tally: dict[Hashable, list[int]] = {}  # answer -> [votes, earliest index]
        winner = -1
        while winner < 0:
            await branches.wait()
            done = branches.done
            while done:
                i = done.popleft()
                task = tasks[i]
                assert task is not None
                if task.cancelled() or task.exception() is not None:
                    continue
                value = task.result()
                answer = value if key is None else key(value)
                try:
                    entry = tally.get(answer)
                except TypeError as exc:
                    raise TypeError(
                        f"vote() counts equal answers, so they must be hashable, but branch {i} "
                        f"gave {type(answer).__name__}: {answer!r:.80}; pass key= to count a "
                        "hashable part of each answer (e.g. key=str or key=lambda r: r.label)"
                    ) from exc
                if entry is None:
                    tally[answer] = entry = [0, i]
                elif i < entry[1]:
                    entry[1] = i
                entry[0] += 1
                if quorum is not None and winner < 0 and entry[0] >= quorum:
                    winner = entry[1]
            if winner >= 0:
                break
            fatal = branches.fatal()
            if fatal is not None:
                raise fatal
            if branches.finished():
                if not tally:
                    raise all_failed("vote", branches)
                winner = max(tally.values(), key=lambda entry: (entry[0], -entry[1]))[1]
                break
            branches.fill()
        branches.cancel()
        if fork is not None:
            await fork.decide(winner)
        return tasks[winner].result()  # type: ignore[union-attr]
    finally:
        await branches.aclose()
