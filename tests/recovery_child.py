"""A worker process whose workflow's step kills it: a poison input, for max_recoveries.

Usage: recovery_child.py DB. Serves until killed (the test starts the
workflow). The step notes each run in the file ``LEGATO_TEST_LOG`` names,
then ends the process at once (as an OOM kill would).
"""

from __future__ import annotations

import asyncio
import os
import sys

import legato


@legato.step
async def swallow() -> None:
    with open(os.environ["LEGATO_TEST_LOG"], "a") as log:  # noqa: ASYNC230
        log.write("ran\n")
    os._exit(1)


@legato.workflow(name="recovery_poison", max_recoveries=2)
async def poison() -> None:
    await swallow()


async def main(db: str) -> None:
    async with legato.Runtime(db, lease=0.3):
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
