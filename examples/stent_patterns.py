"""Two of the Stent seed's orchestration patterns as durable legato workflows.

Run: ``.venv/bin/python examples/stent_patterns.py``. It works on
``stent_patterns.db`` in a temporary directory and uses a ``VirtualClock``, so
a 48-hour wait for a human passes at once.

1. A saga: book a flight, a hotel and a car; when a booking fails, what was
   already booked is cancelled, newest first. Each compensation is a durable
   step: after a crash, compensating resumes and never repeats a finished one.
2. Approval with a 48h timeout: ask for approval and wait for the ``approval``
   signal for at most 48 hours of durable time. The seed writes this with
   ``asyncio.create_task`` and ``asyncio.wait``; in legato the wait itself takes
   the timeout, and the outcome (a payload, or ``None`` on timeout) is recorded,
   so a replay after a crash takes the same path.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from datetime import UTC, datetime
from typing import Any

import legato


def say(text: str) -> None:
    print(f"    {text}", flush=True)


# -- 1. the saga -------------------------------------------------------------------------


class BookingError(Exception):
    pass


@legato.step
async def book(kind: str, trip: dict[str, Any]) -> str:
    """One booking service call (a stub)."""
    if trip.get("unavailable") == kind:
        say(f"book {kind}: none available")
        raise BookingError(f"no {kind} available")
    booking_id = f"{kind[0].upper()}-{trip['who']}"
    say(f"book {kind}: {booking_id}")
    return booking_id


@legato.step
async def cancel(kind: str, booking_id: str) -> None:
    say(f"cancel {kind}: {booking_id}")


@legato.workflow(name="example_trip")
async def book_trip(trip: dict[str, Any]) -> dict[str, str]:
    async with legato.saga() as saga:
        flight = await book("flight", trip)
        saga.compensate(cancel, "flight", flight)
        hotel = await book("hotel", trip)
        saga.compensate(cancel, "hotel", hotel)
        car = await book("car", trip)  # the last booking needs no compensation
    return {"flight": flight, "hotel": hotel, "car": car}


# -- 2. approval with a timeout ----------------------------------------------------------


@legato.step
async def notify_approvers(request_id: str, approvers: list[str]) -> None:
    say(f"asked {', '.join(approvers)} to approve {request_id}")


@legato.step
async def execute_request(request_id: str, approver: str) -> None:
    say(f"executing {request_id}, approved by {approver}")


@legato.workflow(name="example_approval")
async def approval_with_timeout(request: dict[str, Any]) -> str:
    await notify_approvers(request["id"], request["approvers"])
    approval = await legato.wait_for_signal("approval", timeout="48h")
    if approval is None:
        return f"timed out at {legato.now():%a %H:%M}"
    await execute_request(request["id"], approval["approver"])
    return f"approved by {approval['approver']} at {legato.now():%a %H:%M}"


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "stent_patterns.db")
        print(f"store: {db}")
        monday = datetime(2030, 1, 7, 9, 0, tzinfo=UTC).timestamp()

        print("\n1. saga: the car can't be booked")
        async with legato.Runtime(db) as rt:
            trip = {"who": "ana", "unavailable": "car"}
            try:
                await rt.run(book_trip, trip, id="trip-ana")
            except BookingError as exc:
                print(f"  workflow failed as it should: {exc!r}")
            info = await rt.get("trip-ana")
            print(f"  status {info.status}; checkpoints:",
                  ", ".join(f"{s.position} {s.name}{'' if s.ok else ' (failed)'}"
                            for s in info.steps))
            print(f"  a trip with everything available: {await rt.run(book_trip, {'who': 'bo'})}")

        print("\n2a. approval: nobody answers (48 hours pass in virtual time)")
        clock = legato.VirtualClock(start=monday)
        async with legato.Runtime(db, clock=clock) as rt:
            request = {"id": "expense-1", "approvers": ["ana", "bo"]}
            print(f"  {await rt.run(approval_with_timeout, request, id='expense-1')}")
        print(f"  virtual time passed: {(clock.now() - monday) / 3600:g} h")

        print("\n2b. approval: bo answers after 47 hours")
        clock = legato.VirtualClock(start=monday, autojump=False)
        async with legato.Runtime(db, clock=clock) as rt:
            request = {"id": "expense-2", "approvers": ["ana", "bo"]}
            handle = await rt.start(approval_with_timeout, request, id="expense-2")
            for _ in range(500):  # until it is unloaded to wait: it then holds no task
                if await handle.status() == legato.Status.WAITING:
                    break
                await asyncio.sleep(0.01)
            print(f"  status while the humans think: {await handle.status()}")
            await clock.advance(47 * 3600)
            await rt.signal("expense-2", "approval", {"approved": True, "approver": "bo"})
            print(f"  {await handle.result(timeout=5)}")


if __name__ == "__main__":
    asyncio.run(main())
