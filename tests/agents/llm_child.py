"""A worker process for the llm crash test: start one workflow and serve until killed.

Usage: llm_child.py DB WORKFLOW_ID. The model server and key come from
OPENAI_BASE_URL and OPENAI_API_KEY, as in a real deployment. Logs everything
(httpx included) at DEBUG, so the test can check the key never shows up.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import llm_workflows

import legato


async def main(db: str, workflow_id: str) -> None:
    async with legato.Runtime(db) as rt:
        await rt.start(llm_workflows.three_questions, id=workflow_id)
        print("started", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    logging.basicConfig(level=logging.DEBUG, stream=sys.stdout, force=True)
    asyncio.run(main(*sys.argv[1:3]))
