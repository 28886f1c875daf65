"""Channel: FIFO, bounded/unbounded, close, async iteration, cancelled receives."""

from __future__ import annotations

import asyncio

import pytest

from legato.flow import Channel, ChannelClosed, parallel, race


async def turns(n: int = 3) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def test_fifo_and_unbounded_by_default() -> None:
    ch: Channel[int] = Channel()
    assert ch.maxsize == 0
    for i in range(1000):
        await ch.send(i)  # never waits
    assert len(ch) == 1000
    assert [await ch.receive() for _ in range(1000)] == list(range(1000))


async def test_receive_waits_for_a_send() -> None:
    ch: Channel[str] = Channel()
    receiver = asyncio.ensure_future(ch.receive())
    await turns()
    assert not receiver.done()
    await ch.send("hi")
    assert await receiver == "hi"


async def test_bounded_send_waits_for_room() -> None:
    ch: Channel[int] = Channel(maxsize=1)
    await ch.send(1)
    sender = asyncio.ensure_future(ch.send(2))
    await turns()
    assert not sender.done()
    assert await ch.receive() == 1
    await sender
    assert await ch.receive() == 2


async def test_close_drains_then_raises() -> None:
    ch: Channel[int] = Channel()
    await ch.send(1)
    await ch.send(2)
    ch.close()
    ch.close()  # twice is fine
    assert ch.closed
    assert [await ch.receive(), await ch.receive()] == [1, 2]
    with pytest.raises(ChannelClosed, match="closed and empty"):
        await ch.receive()
    with pytest.raises(ChannelClosed, match="can't send"):
        await ch.send(3)


async def test_close_wakes_waiting_receivers_and_senders() -> None:
    ch: Channel[int] = Channel(maxsize=1)
    receivers = [asyncio.ensure_future(Channel[int]().receive())]  # unrelated, cancelled below
    waiting = asyncio.ensure_future(ch.receive())
    await turns()
    ch.close()
    with pytest.raises(ChannelClosed):
        await waiting
    full: Channel[int] = Channel(maxsize=1)
    await full.send(1)
    sender = asyncio.ensure_future(full.send(2))
    await turns()
    full.close()
    with pytest.raises(ChannelClosed):
        await sender
    assert await full.receive() == 1
    receivers[0].cancel()
    await asyncio.gather(*receivers, return_exceptions=True)


async def test_async_iteration_stops_at_close() -> None:
    ch: Channel[str] = Channel()

    async def producer() -> None:
        for word in ["a", "b", "c"]:
            await ch.send(word)
            await asyncio.sleep(0)
        ch.close()

    task = asyncio.ensure_future(producer())
    assert [word async for word in ch] == ["a", "b", "c"]
    await task


async def test_a_cancelled_receive_never_loses_an_item() -> None:
    ch: Channel[str] = Channel()
    first = asyncio.ensure_future(ch.receive())
    second = asyncio.ensure_future(ch.receive())
    await turns()
    await ch.send("item")  # wakes `first` ...
    first.cancel()  # ... which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await second == "item"  # the wake-up was passed on


async def test_a_cancelled_receive_leaves_the_item_for_later() -> None:
    ch: Channel[str] = Channel()
    receiver = asyncio.ensure_future(ch.receive())
    await turns()
    await ch.send("item")
    receiver.cancel()
    with pytest.raises(asyncio.CancelledError):
        await receiver
    assert len(ch) == 1 and await ch.receive() == "item"


async def test_a_cancelled_send_passes_the_room_on() -> None:
    ch: Channel[int] = Channel(maxsize=1)
    await ch.send(0)
    first = asyncio.ensure_future(ch.send(1))
    second = asyncio.ensure_future(ch.send(2))
    await turns()
    assert await ch.receive() == 0  # wakes `first` ...
    first.cancel()  # ... cancelled before it runs: 1 is not sent
    with pytest.raises(asyncio.CancelledError):
        await first
    await second
    assert await ch.receive() == 2 and len(ch) == 0


@pytest.mark.parametrize("maxsize", [-1, 1.5, None])
def test_bad_maxsize(maxsize: object) -> None:
    with pytest.raises(ValueError, match="maxsize"):
        Channel(maxsize=maxsize)  # type: ignore[arg-type]


def test_repr() -> None:
    assert repr(Channel(maxsize=2)) == "<Channel open items=0 maxsize=2>"


async def test_race_of_receives_loses_no_item() -> None:
    a: Channel[int] = Channel()
    b: Channel[int] = Channel()
    await a.send(1)
    await b.send(2)
    assert await race(a.receive(), b.receive()) == 1
    assert await b.receive() == 2


async def test_a_failed_parallel_puts_received_items_back() -> None:
    ch: Channel[int] = Channel()
    await ch.send(1)
    await ch.send(2)

    async def fails() -> int:
        await asyncio.sleep(0)
        raise ValueError("x")

    with pytest.raises(ValueError):
        await parallel(ch.receive(), ch.receive(), fails())
    assert [await ch.receive(), await ch.receive()] == [1, 2]  # back, in order
