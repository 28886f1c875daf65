"""Lumen's "Async & Futures" guide, in plain asyncio with legato's primitives.

Run: ``.venv/bin/python examples/lumen_async_futures.py``. Stub async
functions stand in for HTTP and LLM calls.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from legato.flow import (
    Cancelled,
    Channel,
    Completed,
    Failed,
    Future,
    Pending,
    Selected,
    deterministic,
    parallel,
    race,
    select,
    sleep,
    spawn,
    timeout,
    vote,
)


async def compute(x: int) -> int:
    await asyncio.sleep(0.01)
    return x * 2


async def task(name: str, latency: float = 0.01) -> str:
    await asyncio.sleep(latency)
    return name


async def fetch_data(ok: bool = True) -> str:
    await asyncio.sleep(0.01)
    if not ok:
        raise ConnectionError("api.example.com is unreachable")
    return "data"


def describe(f: Future[str]) -> str:
    """``match future.state Pending -> ... Completed(v) -> ... Error(msg) -> ... end``"""
    match f.state:
        case Pending():
            return "Still running"
        case Completed(v):
            return f"Done: {v}"
        case Failed(error):
            return f"Failed: {error}"
        case Cancelled():
            return "Cancelled"


async def futures() -> None:
    # let future = spawn(long_running_task()) ... let result = await future
    f1 = spawn(compute(42))
    print("spawn:               ", describe(spawn(task("x"))), "->", await f1)

    # spawn with closure
    async def closure() -> int:
        a = await compute(1)
        return await compute(a)

    print("spawn with closure:  ", await spawn(closure()))

    # spawn list: let results = await spawn([task_a(), task_b(), task_c()])
    print("spawn list:          ", await spawn([task("a"), task("b"), task("c")]))

    # await resolves nested futures: let results = await [spawn(a()), spawn(b())]
    nested = [spawn(task("a")), spawn(task("b")), spawn(task("c"))]
    print("await nested:        ", await parallel(nested))

    # future states
    running = spawn(task("slow", latency=0.05))
    failing = spawn(fetch_data(ok=False))
    await asyncio.sleep(0.02)
    print("states:              ", describe(running), "|", describe(failing))
    await running

    # eager (default) vs deferred FIFO (@deterministic true)
    async with deterministic():
        d1, d2 = spawn(task("a", 0.02)), spawn(task("b"))
        print("deterministic:       ", describe(d1), "->", [await d1, await d2])


async def patterns() -> None:
    items = [1, 2, 3]
    print("parallel for:        ", await parallel(compute(i) for i in items))
    r = await parallel(a=task("A"), b=task("B"), c=task("C"))
    print("parallel block:      ", r.a + r.b + r.c)
    print("race:                ", await race(task("primary", 0.05), task("backup", 0.01)))
    print("vote:                ", await vote(task("yes"), task("no"), task("yes")))
    channel: Channel[str] = Channel()
    match await select(msg=channel.receive(), timeout=0.02):
        case Selected("msg", m):
            print("select:              ", f"handle({m})")
        case _:
            print("select:              ", "timeout")
    print("timeout:             ", await timeout(0.02, task("slow_operation", 1.0)))
    print("race with sleep:     ", await race(task("late", 1.0), sleep(0.01, result="default")))


async def errors() -> None:
    # match await future: value -> ..., error -> ...
    future = spawn(fetch_data(ok=False))
    try:
        print("error handling:      ", "Success:", await future)
    except ConnectionError as error:
        print("error handling:      ", "Failed:", error)

    async def safe_fetch() -> tuple[str, str]:
        try:
            return ("ok", await spawn(fetch_data()))
        except ConnectionError as error:
            return ("err", str(error))

    print("safe_fetch:          ", await safe_fetch())


async def scrape_site(base_url: str) -> list[str]:
    """The web scraper: fetch the index, then every link in parallel."""

    async def fetch(url: str) -> str:
        await asyncio.sleep(0.01)
        return "about blog contact" if url.endswith("/index") else f"page {url}"

    index = await fetch(f"{base_url}/index")
    return await parallel(fetch(f"{base_url}/{link}") for link in index.split())


@dataclass(frozen=True)
class Answer:
    model: str
    answer: str


async def query_model(model: str, question: str) -> Answer:
    await asyncio.sleep(0.01)
    return Answer(model, "Lyon" if model == "gemini-pro" else "Paris")


async def query_ensemble(question: str) -> tuple[str, list[str]]:
    """Answers from several models in parallel, then a vote on the answer."""
    models = ["gpt-4o", "claude-3-opus", "gemini-pro"]
    answers = [spawn(query_model(m, question)) for m in models]
    all_answers = await parallel(answers)
    consensus = await vote(answers, key=lambda a: a.answer)
    return consensus.answer, [f"{a.model}: {a.answer}" for a in all_answers]


async def main() -> None:
    await futures()
    await patterns()
    await errors()
    print("scrape_site:         ", await scrape_site("https://example.com"))
    print("query_ensemble:      ", await query_ensemble("capital of France?"))


if __name__ == "__main__":
    asyncio.run(main())
