"""Lumen's orchestration tutorial, in plain asyncio with legato's primitives.

Run: ``.venv/bin/python examples/lumen_orchestration.py``. Stub async
functions stand in for the HTTP and LLM calls (short sleeps, canned answers).
Each section names the Lumen form it ports.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from legato.flow import (
    Channel,
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

# -- stubs --------------------------------------------------------------------


async def fetch(url: str, latency: float = 0.01) -> str:
    await asyncio.sleep(latency)
    return f"<html of {url}>"


async def analyze(source: str) -> str:
    await asyncio.sleep(0.01)
    return f"analysis of {source}"


async def fetch_from_api() -> str:
    await asyncio.sleep(0.01)
    return "api data"


async def query_database() -> int:
    await asyncio.sleep(0.01)
    return 42


async def check_feature_flag() -> bool:
    return True


async def model(name: str, answer: str, latency: float = 0.01) -> str:
    await asyncio.sleep(latency)
    return answer


# -- the tutorial's examples ------------------------------------------------------


async def fetch_all(urls: list[str]) -> list[str]:
    """``await parallel for url in urls fetch(url) end``"""
    return await parallel(fetch(url) for url in urls)


async def analyze_sources(sources: list[str]) -> list[str]:
    """``await parallel for source in sources analyze(source) end``"""
    return await parallel(analyze(source) for source in sources)


async def multi_task() -> tuple[str, int, bool]:
    """The parallel block: ``result1 = ...; result2 = ...; result3 = ...``"""
    r = await parallel(
        result1=fetch_from_api(), result2=query_database(), result3=check_feature_flag()
    )
    return (r.result1, r.result2, r.result3)


async def fast_fetch(url1: str, url2: str) -> str:
    """``await race fetch(url1) fetch(url2) end``"""
    return await race(fetch(url1, latency=0.05), fetch(url2, latency=0.01))


async def fetch_with_timeout(url: str, timeout_s: float) -> str | None:
    """``await race fetch(url) sleep(timeout_ms) |> fn(_) => null end``"""
    return await race(fetch(url, latency=1.0), sleep(timeout_s, result=None))


async def get_answer(question: str) -> str:
    """``await vote model_a(q) model_b(q) model_c(q) end``"""
    return await vote(model("a", "42"), model("b", "41"), model("c", "42"))


async def handle_events(channel_a: Channel[str], channel_b: Channel[int]) -> str:
    """``await select event1 = channel_a.receive() event2 = ... timeout = sleep(5000) end``"""
    match await select(event1=channel_a.receive(), event2=channel_b.receive(), timeout=0.05):
        case Selected("event1", e):
            return f"handle1({e!r})"
        case Selected("event2", e):
            return f"handle2({e!r})"
        case _:
            return "timeout"


async def bounded_fetch(url: str, latency: float) -> tuple[str, str]:
    """``let result = await timeout(5000, fetch(url))`` then ``match result``"""
    match await timeout(0.05, fetch(url, latency)):
        case str(data):
            return ("ok", data)
        case _:
            return ("err", "Timeout")


# -- orchestration ResearchTeam ---------------------------------------------------


@dataclass(frozen=True)
class SearchResult:
    engine: str
    hits: int


@dataclass(frozen=True)
class Report:
    summary: str
    insights: str


async def search(engine: str, topic: str) -> SearchResult:
    await asyncio.sleep(0.01)
    return SearchResult(engine, hits=len(engine) * 10)


async def summarize_fast(sources: list[SearchResult]) -> str:
    await asyncio.sleep(0.01)
    return f"quick summary of {len(sources)} sources"


async def summarize_thorough(sources: list[SearchResult]) -> str:
    await asyncio.sleep(1.0)
    return "thorough summary"


async def extract_insights(model_name: str, sources: list[SearchResult]) -> str:
    await asyncio.sleep(0.01)
    if model_name == "b":
        raise ConnectionError("model b is unreachable")  # failures don't vote
    return "durable execution needs deterministic replay"


async def research(topic: str) -> Report:
    sources = await parallel(search(engine, topic) for engine in ["google", "bing", "duckduckgo"])
    quick = await race(summarize_fast(sources), summarize_thorough(sources))
    insights = await vote(
        extract_insights("a", sources),
        extract_insights("b", sources),
        extract_insights("c", sources),
    )
    return Report(quick, insights)


# -- spawn, futures, deterministic scheduling --------------------------------------


async def background_processing() -> list[str]:
    future1 = spawn(fetch("a"))
    future2 = spawn(fetch("b"))
    state = f"state while running: {future1.state}"
    return [state, await future1, await future2]


async def process_all(items: list[int]) -> list[int]:
    async def process(item: int) -> int:
        await asyncio.sleep(0.01)
        return item * item

    futures = spawn([process(items[0]), process(items[1]), process(items[2])])
    return await futures


async def ordered_execution() -> list[str]:
    log: list[str] = []

    async def task(name: str, latency: float) -> str:
        await asyncio.sleep(latency)
        log.append(name)
        return name

    async with deterministic():
        f1 = spawn(task("a", 0.02))  # queued
        f2 = spawn(task("b", 0.0))  # queued
        results = [await f2, await f1]  # runs a, then b: FIFO, one at a time
    return [*results, f"ran in order {log}"]


# -- EnsembleAnalyzer ---------------------------------------------------------------


@dataclass(frozen=True)
class Analysis:
    model: str
    sentiment: str
    details: str


@dataclass(frozen=True)
class ConsensusAnalysis:
    sentiment: str
    details: list[str]


class ModelA:
    async def analyze(self, text: str) -> Analysis:
        await asyncio.sleep(0.01)
        return Analysis("gpt-4o", "positive", "upbeat wording")


class ModelB:
    async def analyze(self, text: str) -> Analysis:
        await asyncio.sleep(0.02)
        return Analysis("claude-3-opus", "positive", "praise for the tool")


class ModelC:
    async def analyze(self, text: str) -> Analysis:
        await asyncio.sleep(0.015)
        return Analysis("gemini-pro", "neutral", "mostly factual")


async def ensemble_analyze(text: str) -> ConsensusAnalysis:
    a, b, c = ModelA(), ModelB(), ModelC()
    f1, f2, f3 = spawn(a.analyze(text)), spawn(b.analyze(text)), spawn(c.analyze(text))
    r1, r2, r3 = await parallel(f1, f2, f3)  # analyses in parallel
    winner = await vote(f1, f2, f3, key=lambda r: r.sentiment)  # vote on the sentiment
    return ConsensusAnalysis(winner.sentiment, [r1.details, r2.details, r3.details])


async def main() -> None:
    print("fetch_all:          ", await fetch_all(["a.com", "b.com"]))
    print("analyze_sources:    ", await analyze_sources(["paper", "blog"]))
    print("multi_task:         ", await multi_task())
    print("fast_fetch:         ", await fast_fetch("slow.com", "fast.com"))
    print("fetch_with_timeout: ", await fetch_with_timeout("slow.com", 0.02))
    print("get_answer:         ", await get_answer("the answer?"))
    channel_a: Channel[str] = Channel()
    channel_b: Channel[int] = Channel()
    await channel_b.send(7)
    print("handle_events:      ", await handle_events(channel_a, channel_b))
    print("handle_events:      ", await handle_events(channel_a, channel_b))
    print("bounded_fetch:      ", await bounded_fetch("ok.com", 0.01))
    print("bounded_fetch:      ", await bounded_fetch("slow.com", 1.0))
    print("research:           ", await research("durable execution"))
    print("background:         ", await background_processing())
    print("process_all:        ", await process_all([1, 2, 3]))
    print("ordered_execution:  ", await ordered_execution())
    print("ensemble_analyze:   ", await ensemble_analyze("legato is a joy"))


if __name__ == "__main__":
    asyncio.run(main())
