"""legato's demo: a durable trip-planning workflow on ./legato.db.

Run it twice. The first run does the work, checkpointing every step; the
second finds the workflow's id in legato.db and shows the recorded result
without running a single step again. Kill it half-way (Ctrl-C) and run it
again: it carries on from the last checkpoint.
"""

from __future__ import annotations

import asyncio
import sys

import legato


def say(text: str) -> None:
    print(f"    {text}", flush=True)


@legato.step
async def check_budget(traveller: str, budget: int) -> int:
    say(f"checking {traveller}'s budget ({budget} EUR)")
    await asyncio.sleep(0.2)
    return budget


@legato.step
async def search_flights(city: str) -> dict[str, object]:
    say(f"searching flights to {city}")
    await asyncio.sleep(0.4)
    return {"flight": "LG 204", "price": 180}


@legato.step
async def search_hotels(city: str) -> dict[str, object]:
    say(f"searching hotels in {city}")
    await asyncio.sleep(0.3)
    return {"hotel": "Hotel Allegro", "price": 95}


@legato.step
async def weather(city: str) -> str:
    say(f"asking for the weather in {city}")
    await asyncio.sleep(0.1)
    return "sunny, 24°C"


@legato.step
async def book(flight: dict[str, object], hotel: dict[str, object], booking_ref: str) -> str:
    say(f"booking {flight['flight']} and {hotel['hotel']} as {booking_ref}")
    await asyncio.sleep(0.2)
    return booking_ref


@legato.workflow
async def plan_trip(traveller: str, city: str, budget: int) -> dict[str, object]:
    """Check the budget, search three things at once, then book."""
    money = await check_budget(traveller, budget)
    # Concurrent branches: each gets its own checkpoint positions.
    flight, hotel, forecast = await asyncio.gather(
        search_flights(city), search_hotels(city), weather(city)
    )
    total = int(flight["price"]) + 2 * int(hotel["price"])  # type: ignore[call-overload]
    if total > money:
        return {"booked": False, "reason": f"{total} EUR is over budget"}
    ref = f"TRIP-{legato.uuid4().hex[:6].upper()}"  # recorded: the same on every replay
    await book(flight, hotel, ref)
    return {"booked": True, "ref": ref, "total": total, "weather": forecast,
            "planned_at": legato.now().isoformat(timespec="seconds")}


async def main(db: str = "legato.db") -> None:
    async with legato.Runtime(db) as rt:
        handle = await rt.start(plan_trip, "Ana", "Lisbon", 500, id="trip-ana-lisbon")
        fresh = (await rt.get(handle.id)).status != legato.Status.SUCCEEDED
        print("legato demo: plan_trip('Ana', 'Lisbon', 500) as workflow 'trip-ana-lisbon'")
        print(f"  store: {db}")
        if fresh:
            print("  running (each line below is a step really running):")
        result = await handle.result()
        info = await rt.get(handle.id)
    print(f"  result: {result}")
    print(f"  checkpoints ({len(info.steps)}):")
    for s in info.steps:
        print(f"    {s.position:>4}  {s.kind:<6} {s.name}")
    if fresh:
        print("\nRun it again: the workflow is done, so legato shows its recorded result")
        print("without running any step. Delete legato.db to start over.")
    else:
        print(f"\n  Recorded {info.finished_at:%Y-%m-%d %H:%M:%S} UTC: nothing ran again.")


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:2]))
