"""Workflows left in every status, for the inspection API and CLI tests.

``populate(store)`` leaves: ``ok-1`` succeeded (with a child ``ok-1/2`` and
an event), ``bad-1`` failed in a step after a retried step and a ``gather``
of two branches, ``wait-1`` waiting for a signal, ``later-1`` pending (delayed
an hour, on the queue ``emails``) and ``gone-1`` cancelled. Workflow names
start with ``shop.``: names are global in a process, and other tests' are plain.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import legato
from polling import eventually

FLAKY_FAILURES = 2  # failed attempts of `flaky` before it succeeds
_calls: dict[str, int] = {}


@dataclass(frozen=True)
class Order:
    sku: str
    qty: int


class CardDeclined(Exception):
    pass


@legato.step
async def price(sku: str) -> int:
    return 100 * len(sku)


@legato.step(retry=legato.Retry(attempts=5, initial=0.001, jitter=0))
async def flaky(key: str) -> str:
    _calls[key] = _calls.get(key, 0) + 1
    if _calls[key] <= FLAKY_FAILURES:
        raise ConnectionError(f"gateway down ({_calls[key]})")
    return "reserved"


@legato.step
async def charge(cents: int) -> str:
    raise CardDeclined(f"card declined for {cents}")


@legato.workflow(name="shop.pack")
async def pack(order: Order) -> str:
    return f"{order.qty}x{order.sku}"


@legato.workflow(name="shop.checkout")
async def checkout(order: Order, *, note: str = "") -> dict[str, object]:
    cents = await price(order.sku)
    packed = await pack(order)
    await legato.set_event("progress", {"packed": packed})
    return {"cents": cents, "packed": packed, "note": note}


@legato.workflow(name="shop.doomed")
async def doomed(sku: str) -> str:
    await flaky(sku)
    a, b = await asyncio.gather(price(sku), price(sku * 2))
    return await charge(a + b)  # fails here: CardDeclined


@legato.workflow(name="shop.approval")
async def approval(who: str) -> object:
    return await legato.wait_for_signal("approve")


async def populate(store: str) -> None:
    """Leave one workflow in each status in ``store`` (see the module docstring)."""
    _calls.clear()
    async with legato.Runtime(store, suspend_after=0) as rt:
        ok = await rt.start(checkout, Order("tea", 2), note="gift", id="ok-1")
        assert (await ok.result())["packed"] == "2xtea"
        bad = await rt.start(doomed, "mug", id="bad-1")
        with contextlib.suppress(CardDeclined):
            await bad.result()
        waiting = await rt.start(approval, "ana", id="wait-1")
        await eventually(lambda: _status_is(waiting, "waiting"))
        await rt.start(checkout, Order("pen", 1), id="later-1", delay="1h",
                       queue=legato.Queue("emails"))
        gone = await rt.start(approval, "bo", id="gone-1")
        await eventually(lambda: _status_is(gone, "waiting"))
        await rt.cancel("gone-1")
        await eventually(lambda: _status_is(gone, "cancelled"))


async def _status_is(handle: legato.WorkflowHandle[object], status: str) -> bool:
    return await handle.status() == status
