"""vote(): plurality by key, ties to the earliest argument, quorum, failures don't vote."""

from __future__ import annotations

import asyncio

import pytest
from flow_helpers import no_tasks_left

from legato.flow import AllFailed, vote


async def value(x: object, turns: int = 1) -> object:
    for _ in range(turns):
        await asyncio.sleep(0)
    return x


async def fail(exc: BaseException) -> object:
    raise exc


async def test_most_common_wins() -> None:
    assert await vote(value("a"), value("b"), value("b")) == "b"
    assert await vote([value(1), value(2), value(2), value(1), value(1)]) == 1
    no_tasks_left()


async def test_ties_go_to_the_earliest_argument() -> None:
    # "b" finishes first, but "a" is the earlier argument
    assert await vote(value("a", turns=5), value("b"), value("c")) == "a"
    assert await vote(value("x", turns=3), value("y"), value("y", turns=2), value("x")) == "x"


async def test_the_winning_value_comes_from_the_earliest_argument() -> None:
    assert await vote(value("YES", turns=3), value("no"), value("yes"), key=str.lower) == "YES"


async def test_failures_do_not_vote() -> None:
    assert await vote(fail(ValueError()), fail(KeyError()), value("only")) == "only"
    with pytest.raises(AllFailed) as info:
        await vote(fail(ValueError("a")), fail(KeyError("b")))
    assert [type(e) for e in info.value.exceptions] == [ValueError, KeyError]
    assert "vote()" in str(info.value)


async def test_key_lets_unhashable_answers_vote() -> None:
    answers = [value({"label": "cat", "p": 0.9}), value({"label": "dog"}), value({"label": "cat"})]
    winner = await vote(answers, key=lambda a: a["label"])  # type: ignore[index]
    assert winner == {"label": "cat", "p": 0.9}


async def test_unhashable_without_key_says_to_pass_key() -> None:
    with pytest.raises(TypeError, match="pass key="):
        await vote(value([1]), value([1]))
    no_tasks_left()


async def test_quorum_decides_early_and_cancels_the_rest() -> None:
    cancelled: list[int] = []
    never = asyncio.Event()

    async def undecided(i: int) -> str:
        try:
            await never.wait()
        except asyncio.CancelledError:
            cancelled.append(i)
            raise
        return "never"

    result = await vote(value("a"), undecided(1), value("a"), undecided(3), quorum=2)
    assert result == "a"
    assert sorted(cancelled) == [1, 3]
    no_tasks_left()


async def test_quorum_not_reached_falls_back_to_plurality() -> None:
    assert await vote(value("a"), value("b"), value("b"), fail(ValueError()), quorum=3) == "b"


@pytest.mark.parametrize("quorum", [0, 4, -1, 1.0])
async def test_bad_quorum(quorum: object) -> None:
    with pytest.raises(ValueError, match="quorum"):
        await vote(value(1), value(2), value(3), quorum=quorum)  # type: ignore[arg-type]


async def test_empty_vote() -> None:
    with pytest.raises(ValueError, match="at least one"):
        await vote()


async def test_key_errors_propagate_and_cancel() -> None:
    never = asyncio.Event()

    async def blocked() -> str:
        await never.wait()
        return "x"

    def bad_key(answer: object) -> str:
        raise LookupError("bad key")

    with pytest.raises(LookupError):
        await vote(value("a"), blocked(), key=bad_key, quorum=1)
    no_tasks_left()
