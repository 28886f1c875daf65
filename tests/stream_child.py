"""A worker process for the stream and update crash tests: start one workflow, serve until killed.

Usage: stream_child.py DB WORKFLOW_NAME WORKFLOW_ID [ARG]
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import legato
import stream_workflows


async def main(db: str, name: str, workflow_id: str, *args: str) -> None:
    async with legato.Runtime(db, lease=0.5) as rt:
        await rt.start(getattr(stream_workflows, name), *map(int, args), id=workflow_id)
        print("started", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
