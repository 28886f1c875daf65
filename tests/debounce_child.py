"""A client process for the cross-process debounce test.

Usage: debounce_child.py DB CLOCK_START TAG — open a client on DB (durable
time frozen at CLOCK_START), print ``ready``, wait for a line on stdin, then
start ``debounced_echo(TAG, i)`` for i in 0..49 with one debounce key and
print each returned handle's id.
"""

from __future__ import annotations

import asyncio
import sys

import legato
from legato import VirtualClock


@legato.workflow(name="debounced_echo")
async def debounced_echo(tag: str, i: int) -> list[object]:
    return [tag, i]


async def main(db: str, clock_start: float, tag: str) -> None:
    clock = VirtualClock(clock_start, autojump=False)
    async with legato.Runtime(db, clock=clock, worker=False) as rt:
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        for i in range(50):
            handle = await rt.start(debounced_echo, tag, i, debounce=("burst", "5s"))
            print(handle.id, flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2]), sys.argv[3]))
