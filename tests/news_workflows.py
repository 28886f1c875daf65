"""Workflows for the cross-process news tests (served by ``legato worker news_workflows``)."""

from __future__ import annotations

import legato


@legato.step
async def double(x: int) -> int:
    return 2 * x


@legato.workflow(name="news_double")
async def news_double(x: int) -> int:
    return await double(x)


@legato.workflow(name="news_ping_pong")
async def ping_pong(rounds: int) -> int:
    """Answers each "ping" signal with a "pong-<i>" event, ``rounds`` times."""
    for i in range(rounds):
        await legato.wait_for_signal("ping")
        await legato.set_event(f"pong-{i}", i)
    return rounds
