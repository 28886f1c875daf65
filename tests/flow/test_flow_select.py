"""select(): first arm to finish by name, the others cancelled, timeout arm."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from flow_helpers import no_tasks_left, value

from legato.flow import Channel, Selected, select


async def blocked(event: asyncio.Event, cancelled: list[str] | None = None, name: str = "") -> str:
    try:
        await event.wait()
    except asyncio.CancelledError:
        if cancelled is not None:
            cancelled.append(name)
        raise
    return name


async def test_first_arm_wins_and_the_rest_are_cancelled() -> None:
    never = asyncio.Event()
    cancelled: list[str] = []
    selected = await select(
        a=blocked(never, cancelled, "a"), b=value("bee"), c=blocked(never, cancelled, "c")
    )
    assert selected == Selected("b", "bee")
    assert sorted(cancelled) == ["a", "c"]
    no_tasks_left()


async def test_selected_matches_by_name() -> None:
    match await select(msg=value(3)):
        case Selected("msg", int(n)):
            assert n == 3
        case _:
            pytest.fail("no match")


async def test_timeout_arm() -> None:
    never = asyncio.Event()
    assert await select(a=blocked(never), timeout=0.001) == Selected("timeout", None)
    assert await select(a=blocked(never), timeout="1ms") == Selected("timeout", None)
    assert await select(a=blocked(never), timeout=timedelta(milliseconds=1)) == Selected(
        "timeout", None
    )
    assert await select(timeout=0) == Selected("timeout", None)
    no_tasks_left()


async def test_an_arm_done_in_the_same_turn_beats_the_timer() -> None:
    ch: Channel[int] = Channel()
    await ch.send(1)
    assert await select(x=ch.receive(), timeout=0) == Selected("x", 1)


async def test_a_failing_arm_that_finishes_first_is_raised() -> None:
    never = asyncio.Event()

    async def fails() -> None:
        raise ValueError("arm failed")

    with pytest.raises(ValueError, match="arm failed"):
        await select(a=blocked(never), b=fails())
    no_tasks_left()


async def test_simultaneous_arms_go_to_the_earliest() -> None:
    assert await select(a=value(1), b=value(2), c=value(3)) == Selected("a", 1)


async def test_two_ready_channels_lose_no_item() -> None:
    ch_a: Channel[str] = Channel()
    ch_b: Channel[str] = Channel()
    for i in range(3):
        await ch_a.send(f"a{i}")
        await ch_b.send(f"b{i}")
    # both arms can receive in the same turn; the earliest wins ...
    assert await select(a=ch_a.receive(), b=ch_b.receive()) == Selected("a", "a0")
    # ... and the item the losing arm took went back to the front of its channel
    assert len(ch_b) == 3 and await ch_b.receive() == "b0"
    assert await select(b=ch_b.receive(), a=ch_a.receive()) == Selected("b", "b1")
    assert [await ch_a.receive() for _ in range(2)] == ["a1", "a2"]
    no_tasks_left()


async def test_a_sender_arm_beating_a_receive_arm_loses_no_item() -> None:
    ch: Channel[str] = Channel()

    async def send() -> str:
        await ch.send("kept")  # the receive arm takes it in this very turn ...
        return "sent"  # ... but this arm is earlier and wins

    assert await select(a=send(), b=ch.receive()) == Selected("a", "sent")
    assert await ch.receive() == "kept"


async def test_cancelling_select_after_a_receive_completed_loses_no_item() -> None:
    ch: Channel[str] = Channel()
    never = asyncio.Event()
    call = asyncio.ensure_future(select(a=ch.receive(), b=blocked(never)))
    await asyncio.sleep(0)
    await ch.send("item")  # the receive arm completes in the next turn ...
    call.cancel()  # ... while select is being cancelled
    with pytest.raises(asyncio.CancelledError):
        await call
    assert await ch.receive() == "item"
    no_tasks_left()


async def test_bad_calls() -> None:
    with pytest.raises(ValueError, match="at least one arm"):
        await select()
    with pytest.raises(ValueError, match="not a duration"):
        await select(a=value(1), timeout="soon")
    positional = value(1)
    with pytest.raises(TypeError):
        await select(positional)  # type: ignore[call-overload]
    positional.close()
    no_tasks_left()
