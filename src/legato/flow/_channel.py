"""``Channel``: an async FIFO between tasks, with close and async iteration."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from types import CoroutineType
from typing import Any, Generic, TypeVar, final

from legato._errors import ChannelClosed

__all__ = ["RECEIVE_CODE", "Channel", "channel_of"]

T = TypeVar("T")


@final
class Channel(Generic[T]):
    """A FIFO of items between tasks: ``send``, ``receive``, ``close``, ``async for``.

    ``maxsize=0`` (the default) means *unbounded*, as in :class:`asyncio.Queue`:
    ``send`` never waits. With ``maxsize=n`` a ``send`` waits while ``n`` items
    are buffered. (There is no unbuffered rendezvous channel as in Go; use
    ``maxsize=1`` for the tightest back-pressure.)

    ``close()`` ends the stream: sending afterwards raises
    :class:`~legato.ChannelClosed`, receivers get the buffered items and then
    ``ChannelClosed`` (``async for`` simply stops).

    No item is ever lost to a lost race: a ``receive()`` that is cancelled
    (e.g. the losing arm of :func:`select`) takes no item, since an item
    leaves the channel only when ``receive()`` returns it; and when a
    ``channel.receive()`` arm of ``select``/``race``/``parallel`` did return
    an item the primitive then drops (two arms ready in the same turn, a
    failure, an outer cancellation), the item is put back at the front.

    Example::

        ch: legato.Channel[str] = legato.Channel()

        async def producer():
            for word in ["a", "b"]:
                await ch.send(word)
            ch.close()

        legato.spawn(producer())
        async for word in ch:
            print(word)
    """

    __slots__ = ("_closed", "_items", "_maxsize", "_receivers", "_senders")

    def __init__(self, maxsize: int = 0) -> None:
        if type(maxsize) is not int or maxsize < 0:
            raise ValueError(f"Channel(maxsize=...) must be 0 (unbounded) or more, not {maxsize!r}")
        self._maxsize = maxsize
        self._items: deque[T] = deque()
        self._receivers: deque[asyncio.Future[None]] = deque()
        self._senders: deque[asyncio.Future[None]] = deque()
        self._closed = False

    @property
    def maxsize(self) -> int:
        """The buffer size; 0 means unbounded."""
        return self._maxsize

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (items may still be buffered)."""
        return self._closed

    def __len__(self) -> int:
        """The number of buffered items."""
        return len(self._items)

    async def send(self, item: T) -> None:
        """Put ``item`` in the channel, waiting for room if it is bounded and full.

        Raises:
            ChannelClosed: the channel is (or gets, while waiting) closed; the
                item was not sent.
        """
        if self._closed:
            raise ChannelClosed(_SEND_CLOSED)
        maxsize = self._maxsize
        while maxsize and len(self._items) >= maxsize:
            await _wait(self._senders, self._items, self._receivers)
            if self._closed:
                raise ChannelClosed(_SEND_CLOSED)
        self._items.append(item)
        _wake_one(self._receivers)

    async def receive(self) -> T:
        """Take the next item, waiting for one.

        Raises:
            ChannelClosed: the channel is closed and every item was received.
        """
        items = self._items
        while not items:
            if self._closed:
                raise ChannelClosed(
                    "the channel is closed and empty; stop receiving "
                    "('async for item in channel' stops by itself)"
                )
            await _wait(self._receivers, items, None)
        item = items.popleft()
        _wake_one(self._senders)
        return item

    def _put_back(self, item: T) -> None:
        """Return an item a losing ``receive()`` branch took, to the front."""
        self._items.appendleft(item)
        _wake_one(self._receivers)

    def close(self) -> None:
        """End the stream; buffered items can still be received. Closing twice is fine."""
        if self._closed:
            return
        self._closed = True
        for waiters in (self._receivers, self._senders):
            while waiters:
                waiter = waiters.popleft()
                if not waiter.done():
                    waiter.set_result(None)

    def __aiter__(self) -> Channel[T]:
        return self

    async def __anext__(self) -> T:
        try:
            return await self.receive()
        except ChannelClosed:
            raise StopAsyncIteration from None

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<Channel {state} items={len(self._items)} maxsize={self._maxsize}>"


RECEIVE_CODE = Channel.receive.__code__


def channel_of(awaitable: object) -> Channel[Any] | None:
    """The channel of a ``channel.receive()`` coroutine that has not started, else ``None``.

    Primitives that may drop a branch's value use it to put a received item
    back instead of losing it (see ``Branches.track_receives``).
    """
    if type(awaitable) is CoroutineType and awaitable.cr_code is RECEIVE_CODE:
        frame = awaitable.cr_frame
        if frame is not None:
            channel = frame.f_locals.get("self")
            if isinstance(channel, Channel):
                return channel
    return None


_SEND_CLOSED = (
    "can't send on a closed channel; close() belongs to the sending side, "
    "once it has sent everything"
)


async def _wait(
    waiters: deque[asyncio.Future[None]],
    items: deque[T],
    receivers: deque[asyncio.Future[None]] | None,
) -> None:
    """Wait to be woken; if cancelled after being woken, pass the wake-up on."""
    waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    waiters.append(waiter)
    try:
        await waiter
    except BaseException:
        woken = waiter.done() and not waiter.cancelled()
        waiter.cancel()
        with contextlib.suppress(ValueError):
            waiters.remove(waiter)
        if woken:  # someone chose us; let the next waiter have the item (or the room)
            _wake_one(waiters)
        raise


def _wake_one(waiters: deque[asyncio.Future[None]]) -> None:
    while waiters:
        waiter = waiters.popleft()
        if not waiter.done():
            waiter.set_result(None)
            return
