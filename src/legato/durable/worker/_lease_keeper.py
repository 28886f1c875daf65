"""Renewing a worker's leases from a thread, so a stalled event loop keeps them.

A step that blocks the event loop (CPU-bound code, a synchronous client
called from an ``async def``) stops every coroutine, the heartbeat too. Were
the heartbeat a coroutine, another process would take the workflows over after
one lease and run their steps a second time while this one still runs them.
So leases are renewed from a thread with its own connection to the store,
while the loop has made progress within ``stall_limit`` seconds: a process
whose loop is stuck for good (or dead) still loses its workflows to others.

The thread also reads the store's clock (see :class:`~legato._clock.SystemClock`'s
``offset``), warns, naming the step, when the loop stalls longer than a lease,
announces the worker in the store (what it serves, when it was last alive) and
warns once about pending workflows that no live worker has the code for.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence

from ..._clock import SystemClock
from ..._errors import LegatoError
from ...store import Lease, Renewer, Store, WorkerRecord
from ..engine import steps_running

__all__ = ["ANNOUNCE_EVERY", "LeaseKeeper", "read_store_clock"]

log = logging.getLogger("legato.worker")

_TICK = 0.1  # seconds between the loop's signs of life
_CLOCK_EVERY = 10.0  # seconds between readings of the store's clock
MAX_ROUND_TRIP = 0.1  # seconds; a slower reading of the store's clock is not trusted
ANNOUNCE_EVERY = 2.0  # seconds between a worker's announcements of itself


async def read_store_clock(store: Store | Renewer, wall: SystemClock) -> bool:
    """Set ``wall``'s offset to the store's clock (within half a round trip); whether it did.

    A reading whose round trip took longer than ``MAX_ROUND_TRIP`` is dropped:
    its error could be as large as half of it, enough to write leases that
    have lapsed already.
    """
    sent = time.time()
    server = await store.server_time()
    received = time.time()
    if server is None:
        return True
    if received - sent > MAX_ROUND_TRIP:
        return False
    wall.offset = server - (sent + received) / 2
    return True


class LeaseKeeper:
    """A thread renewing ``leases()`` every ``lease / 4`` s while the loop lives.

    ``on_cancel`` is called on the loop with the ids whose cancellation another
    process asked for.
    """

    def __init__(
        self, store: Store, wall: SystemClock, *, lease: float, stall_limit: float,
        leases: Callable[[], Sequence[Lease]], on_cancel: Callable[[list[str]], None],
        describe: Callable[[], WorkerRecord],
        on_renewed: Callable[[list[Lease], float], None] = lambda leases, sent: None,
    ) -> None:
        # (the leases a renewal extended, time.monotonic() it was sent)
        self.on_renewed = on_renewed
        self.describe = describe  # this worker as the store lists it
        self._unknown: set[str] = set()  # workflow names already warned about
        self.renewer = store.renewer()
        self.wall = wall
        self.lease = lease
        self.stall_limit = stall_limit
        self.leases = leases
        self.on_cancel = on_cancel
        self.beat = time.monotonic()  # the loop's last sign of life
        self._stop = threading.Event()
        self._ready = threading.Event()  # set after the first announcement
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ticker: asyncio.TimerHandle | None = None

    async def start(self) -> None:
        """Start the thread; return once it has announced the worker (or failed to)."""
        self._loop = asyncio.get_running_loop()
        self._tick()
        self._thread = threading.Thread(target=self._main, name="legato-leases", daemon=True)
        self._thread.start()
        await asyncio.to_thread(self._ready.wait)

    async def stop(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.cancel()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)

    def _tick(self) -> None:
        self.beat = time.monotonic()
        assert self._loop is not None
        self._ticker = self._loop.call_later(_TICK, self._tick)

    # -- in the thread -------------------------------------------------------------------

    def _main(self) -> None:
        try:
            asyncio.run(self._renewing())
        except BaseException:
            # without renewals this worker's runs unwind at their next step (their
            # leases lapse) and other workers, or its own claims, take them over
            log.exception("the lease keeper stopped: this worker's leases are no longer renewed")
            raise
        finally:
            self._ready.set()

    async def _renewing(self) -> None:
        store = self.renewer  # its own connection: the loop's may be stuck
        try:
            await store.open()
            await self._read_clock(store)
            clock_read = announced = time.monotonic()
            await self._announce(store)
            self._ready.set()
            warned = False
            while not await asyncio.to_thread(self._stop.wait, self.lease / 4):
                stalled = time.monotonic() - self.beat
                if stalled > self.lease and not warned:
                    warned = True
                    self._warn_stall(stalled)
                elif stalled <= self.lease:
                    warned = False
                if stalled > self.stall_limit:
                    continue  # stuck for good: let other workers take its workflows
                if time.monotonic() - clock_read > _CLOCK_EVERY:
                    await self._read_clock(store)
                    clock_read = time.monotonic()
                await self._renew(store)
                if time.monotonic() - announced > ANNOUNCE_EVERY:
                    await self._announce(store)
                    announced = time.monotonic()
        finally:
            await store.close()

    async def _renew(self, store: Renewer) -> None:
        leases, sent = list(self.leases()), time.monotonic()
        try:
            renewal = await store.heartbeat(leases, self.wall.now() + self.lease)
        except LegatoError:
            log.exception("renewing leases failed; retrying")
            return
        self.on_renewed([lease for lease in leases if lease[0] in renewal.renewed], sent)
        if renewal.cancelled and self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.on_cancel, list(renewal.cancelled))

    async def _announce(self, store: Renewer) -> None:
        me = self.describe()
        try:
            await store.announce(WorkerRecord(
                me.id, me.names, me.queues, me.started_at, self.wall.now()))
            unknown = set(await store.unknown_names(me.names)) - self._unknown
        except LegatoError:
            log.exception("announcing the worker failed; retrying")
            return
        for name in sorted(unknown):
            self._unknown.add(name)
            log.warning(
                "workflows named %r are pending, and this worker has no code for them (it "
                "serves %s); they run once a worker that imports their module serves this "
                "store", name, ", ".join(me.names) or "no workflows")

    async def _read_clock(self, renewer: Renewer) -> None:
        try:
            if not await read_store_clock(renewer, self.wall):
                log.info("the store's clock answered slowly; keeping the last offset")
        except LegatoError:
            log.exception("reading the store's clock failed; keeping the last offset")

    def _warn_stall(self, stalled: float) -> None:
        loop = self._loop
        task = asyncio.current_task(loop) if loop is not None else None
        what = steps_running.get(task) if task is not None else None
        culprit = what or (f"task {task.get_name()!r}" if task is not None else "unknown code")
        log.warning(
            "the event loop has been blocked for %.1f s by %s; leases are kept for up to "
            "%.0f s of stall (stall_limit=), after which other workers take this worker's "
            "workflows over. Run blocking code in a plain `def` step (it runs in a thread) "
            "or with asyncio.to_thread", stalled, culprit, self.stall_limit)
