"""Which step each task runs: to name the one blocking the event loop."""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["step_label", "steps_running"]

# Read from the lease keeper's thread when the loop stalls.
steps_running: dict[asyncio.Task[Any], str] = {}


def step_label(workflow_id: str, position: str, name: str) -> str:
    """How a warning names a step: ``step 'charge' (position 3) of workflow 'order-1'``."""
    return f"step {name!r} (position {position}) of workflow {workflow_id!r}"
