"""A worker process for crash tests: start one workflow and serve until killed.

Usage: crash_child.py DB WORKFLOW_NAME WORKFLOW_ID
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import crash_workflows
import legato


async def main(db: str, name: str, workflow_id: str) -> None:
    async with legato.Runtime(db) as rt:
        await rt.start(getattr(crash_workflows, name), id=workflow_id)
        print("started", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
