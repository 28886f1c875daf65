"""A user program that must pass ``mypy --strict`` (checked by tests/test_typing.py).

It is never run: it exercises the public API's types.
"""

from __future__ import annotations

import legato


@legato.step(retry=legato.Retry(attempts=3), timeout=5)
async def fetch(url: str) -> int:
    return len(url)


@legato.step(name="count")
def count_words(text: str) -> int:
    return len(text.split())


@legato.step
async def shout(text: str) -> str:
    return text.upper()


@legato.workflow(name="report", timeout="1h")
async def report(topic: str, pages: int = 1) -> dict[str, int]:
    size: int = await fetch(topic)
    words: int = await count_words(topic)
    loud: str = await shout(topic)
    return {"size": size * pages, "words": words, "loud": len(loud)}


@legato.workflow
async def plain() -> list[str]:
    return ["ok"]


async def main() -> None:
    async with legato.Runtime("legato.db") as rt:
        handle: legato.WorkflowHandle[dict[str, int]] = await rt.start(
            report, "durable", 2, id="r-1", queue="reports")
        result: dict[str, int] = await handle.result()
        again: dict[str, int] = await rt.run(report, "x")
        other: list[str] = await rt.handle("p-1", plain).result()
        info: legato.WorkflowInfo = await rt.get("r-1")
        steps: list[str] = [s.position for s in info.steps]
        records: list[legato.HistoryRecord] = await rt.history("r-1")
        failed: list[legato.WorkflowInfo] = await rt.list(status="failed", order="oldest")
        print(result, again, other, steps, records, failed)
