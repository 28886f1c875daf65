"""Every example of the Lumen seeds (orchestration, async & futures), in Python.

Stub async functions stand in for the LLM and HTTP calls.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from flow_helpers import no_tasks_left

import legato.flow as legato
from legato.flow import Cancelled, Completed, Failed, Pending, Selected

# -- stubs ------------------------------------------------------------------


async def fetch(url: str, delay: float = 0.0) -> str:
    await asyncio.sleep(delay)
    return f"<{url}>"


async def analyze(source: str) -> str:
    await asyncio.sleep(0)
    return f"analysis of {source}"


async def fetch_from_api() -> str:
    return "api"


async def query_database() -> int:
    return 42


async def check_feature_flag() -> bool:
    return True


async def model_a(question: str) -> str:
    return "42"


async def model_b(question: str) -> str:
    return "41"


async def model_c(question: str) -> str:
    return "42"


# -- lumen-orchestration.md -----------------------------------------------


async def test_parallel_for_fetch_all() -> None:
    async def fetch_all(urls: list[str]) -> list[str]:
        return await legato.parallel(fetch(url) for url in urls)

    assert await fetch_all(["a", "b", "c"]) == ["<a>", "<b>", "<c>"]
    no_tasks_left()


async def test_parallel_with_collection_analyze_sources() -> None:
    async def analyze_sources(sources: list[str]) -> list[str]:
        return await legato.parallel(analyze(source) for source in sources)

    assert await analyze_sources(["x", "y"]) == ["analysis of x", "analysis of y"]


async def test_parallel_block_multi_task() -> None:
    async def multi_task() -> tuple[str, int, bool]:
        r = await legato.parallel(
            result1=fetch_from_api(), result2=query_database(), result3=check_feature_flag()
        )
        return (r.result1, r.result2, r.result3)

    assert await multi_task() == ("api", 42, True)
    # the positional form, typed as a tuple
    assert await legato.parallel(fetch_from_api(), query_database(), check_feature_flag()) == (
        "api",
        42,
        True,
    )


async def test_race_fast_fetch() -> None:
    release = asyncio.Event()

    async def slow(url: str) -> str:
        await release.wait()
        return f"<{url}>"

    async def fast_fetch(url1: str, url2: str) -> str:
        return await legato.race(slow(url1), fetch(url2))

    assert await fast_fetch("one", "two") == "<two>"
    no_tasks_left()


async def test_race_with_timeout() -> None:
    async def fetch_with_timeout(url: str, timeout: float) -> str | None:
        return await legato.race(fetch(url, delay=10), legato.sleep(timeout, result=None))

    assert await fetch_with_timeout("slow", 0.01) is None

    async def fast_fetch_with_timeout(url: str, timeout: float) -> str | None:
        return await legato.race(fetch(url), legato.sleep(timeout, result=None))

    assert await fast_fetch_with_timeout("quick", 10) == "<quick>"
    no_tasks_left()


async def test_vote_get_answer() -> None:
    async def get_answer(question: str) -> str:
        return await legato.vote(model_a(question), model_b(question), model_c(question))

    assert await get_answer("meaning?") == "42"


async def test_select_handle_events() -> None:
    @dataclass
    class Event1:
        x: int

    @dataclass
    class Event2:
        y: str

    channel_a: legato.Channel[Event1] = legato.Channel()
    channel_b: legato.Channel[Event2] = legato.Channel()

    def handle1(e: Event1) -> str:
        return f"one:{e.x}"

    def handle2(e: Event2) -> str:
        return f"two:{e.y}"

    async def handle_events() -> str:
        selected = await legato.select(
            event1=channel_a.receive(), event2=channel_b.receive(), timeout=5
        )
        match selected:
            case Selected("event1", Event1() as e):
                return handle1(e)
            case Selected("event2", Event2() as e):
                return handle2(e)
            case _:
                return "timeout"

    await channel_b.send(Event2("b"))
    assert await handle_events() == "two:b"
    await channel_a.send(Event1(1))
    assert await handle_events() == "one:1"

    async def handle_events_soon() -> str:
        match await legato.select(event1=channel_a.receive(), timeout=0.01):
            case Selected("event1", e):
                return f"got {e}"
            case _:
                return "timeout"

    assert await handle_events_soon() == "timeout"
    no_tasks_left()


async def test_timeout_bounded_fetch() -> None:
    async def bounded_fetch(url: str, delay: float) -> tuple[str, str]:
        result = await legato.timeout(1, fetch(url, delay))
        match result:
            case str(data):
                return ("ok", data)
            case None:
                return ("err", "Timeout")

    assert await bounded_fetch("fast", 0) == ("ok", "<fast>")
    assert await legato.timeout(0.01, fetch("slow", 10)) is None
    no_tasks_left()


# ResearchTeam: parallel search, race for a quick summary, vote on insights.


@dataclass(frozen=True)
class SearchResult:
    engine: str
    topic: str


@dataclass(frozen=True)
class Report:
    summary: str
    insights: str


async def search(engine: str, topic: str) -> SearchResult:
    await asyncio.sleep(0)
    return SearchResult(engine, topic)


async def summarize_fast(sources: list[SearchResult]) -> str:
    return f"quick summary of {len(sources)} sources"


async def summarize_thorough(sources: list[SearchResult]) -> str:
    await asyncio.Event().wait()  # never done before the fast one
    return "thorough"


async def extract_insights_a(sources: list[SearchResult]) -> str:
    return "durable execution matters"


async def extract_insights_b(sources: list[SearchResult]) -> str:
    raise RuntimeError("model b is down")  # failures don't vote


async def extract_insights_c(sources: list[SearchResult]) -> str:
    return "durable execution matters"


async def research(topic: str) -> Report:
    sources = await legato.parallel(
        search(engine, topic) for engine in ["google", "bing", "duckduckgo"]
    )
    quick = await legato.race(summarize_fast(sources), summarize_thorough(sources))
    insights = await legato.vote(
        extract_insights_a(sources), extract_insights_b(sources), extract_insights_c(sources)
    )
    return Report(quick, insights)


async def test_research_team() -> None:
    report = await research("durable execution")
    assert report == Report("quick summary of 3 sources", "durable execution matters")
    no_tasks_left()


# EnsembleAnalyzer: analyses in parallel, then a vote on the sentiment.


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
        return Analysis("gpt-4o", "positive", "A says good")


class ModelB:
    async def analyze(self, text: str) -> Analysis:
        return Analysis("claude-3-opus", "positive", "B says fine")


class ModelC:
    async def analyze(self, text: str) -> Analysis:
        return Analysis("gemini-pro", "negative", "C disagrees")


async def ensemble_analyze(text: str) -> ConsensusAnalysis:
    a, b, c = ModelA(), ModelB(), ModelC()
    # Get analyses in parallel (as futures, so the vote can reuse them).
    f1, f2, f3 = (
        legato.spawn(a.analyze(text)),
        legato.spawn(b.analyze(text)),
        legato.spawn(c.analyze(text)),
    )
    r1, r2, r3 = await legato.parallel(f1, f2, f3)
    # Vote on sentiment: finished futures are fine arguments; key= picks what is counted.
    winner = await legato.vote(f1, f2, f3, key=lambda analysis: analysis.sentiment)
    return ConsensusAnalysis(winner.sentiment, [r1.details, r2.details, r3.details])


async def test_ensemble_analyzer() -> None:
    result = await ensemble_analyze("legato is nice")
    assert result.sentiment == "positive"
    assert result.details == ["A says good", "B says fine", "C disagrees"]
    no_tasks_left()


# -- lumen-async-futures.md ------------------------------------------------


async def long_task_a() -> str:
    await asyncio.sleep(0)
    return "a"


async def long_task_b() -> str:
    await asyncio.sleep(0)
    return "b"


async def test_spawn_background_processing() -> None:
    async def background_processing() -> None:
        future1 = legato.spawn(long_task_a())
        future2 = legato.spawn(long_task_b())
        assert isinstance(future1.state, Pending)
        result1 = await future1
        result2 = await future2
        assert (result1, result2) == ("a", "b")

    assert await background_processing() is None


async def test_spawn_starts_eagerly() -> None:
    started = asyncio.Event()

    async def task() -> int:
        started.set()
        return 1

    f = legato.spawn(task())
    await asyncio.wait_for(started.wait(), 1)  # started without being awaited
    assert await f == 1


async def test_spawn_with_closure() -> None:
    async def compute_step_1() -> int:
        return 20

    async def compute_step_2(a: int) -> str:
        return str(a + 1)

    async def closure() -> str:
        a = await compute_step_1()
        return await compute_step_2(a)

    future = legato.spawn(closure())
    assert await future == "21"


async def test_spawn_list_process_all() -> None:
    async def process(item: int) -> int:
        return item * 10

    async def process_all(items: list[int]) -> list[int]:
        futures = legato.spawn([process(items[0]), process(items[1]), process(items[2])])
        return await futures

    assert await process_all([1, 2, 3]) == [10, 20, 30]


async def test_await_resolves_nested_futures() -> None:
    nested = [legato.spawn(long_task_a()), legato.spawn(long_task_b()), legato.spawn(fetch("c"))]
    assert await legato.parallel(nested) == ["a", "b", "<c>"]
    nested2 = (legato.spawn(long_task_a()), legato.spawn(long_task_b()))
    assert await legato.spawn(nested2) == ["a", "b"]
    named = {"x": legato.spawn(long_task_a()), "y": legato.spawn(long_task_b())}
    assert await legato.parallel(named) == {"x": "a", "y": "b"}


async def test_future_states_check_future() -> None:
    def check_future(f: legato.Future[str]) -> str:
        match f.state:
            case Pending():
                return "Still running"
            case Completed(v):
                return f"Got: {v}"
            case Failed(error):
                return f"Failed: {error}"
            case Cancelled():
                return "Cancelled"

    release = asyncio.Event()

    async def waits() -> str:
        await release.wait()
        return "done"

    async def fails() -> str:
        raise ValueError("nope")

    f = legato.spawn(waits())
    assert check_future(f) == "Still running"
    release.set()
    await f
    assert check_future(f) == "Got: done"
    g = legato.spawn(fails())
    with contextlib.suppress(ValueError):
        await g
    assert check_future(g) == "Failed: nope"
    h = legato.spawn(waits())
    h.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await h
    assert check_future(h) == "Cancelled"


async def test_deterministic_ordered_execution() -> None:
    log: list[str] = []

    async def task_a() -> int:
        log.append("a")
        return 1

    async def task_b() -> int:
        log.append("b")
        return 2

    async def ordered_execution() -> list[int]:
        async with legato.deterministic():
            f1 = legato.spawn(task_a())
            f2 = legato.spawn(task_b())
            await asyncio.sleep(0.001)
            assert log == []  # queued, not started
            return [await f1, await f2]

    assert await ordered_execution() == [1, 2]
    assert log == ["a", "b"]


async def test_error_handling_safe_fetch() -> None:
    async def fetch_data(ok: bool) -> str:
        if not ok:
            raise ConnectionError("unreachable")
        return "data"

    async def safe_fetch(ok: bool) -> tuple[str, str]:
        future = legato.spawn(fetch_data(ok))
        try:
            return ("ok", await future)
        except ConnectionError as err:
            return ("err", str(err))

    assert await safe_fetch(True) == ("ok", "data")
    assert await safe_fetch(False) == ("err", "unreachable")


async def test_web_scraper() -> None:
    async def fetch_page(url: str) -> str:
        if url.endswith("/index"):
            return "p1 p2 p3"
        return f"page {url.rsplit('/', 1)[1]}"

    async def scrape_site(base_url: str) -> list[str]:
        index = await fetch_page(f"{base_url}/index")
        links = index.split()
        return await legato.parallel(fetch_page(f"{base_url}/{link}") for link in links)

    assert await scrape_site("https://x") == ["page p1", "page p2", "page p3"]


async def test_query_ensemble() -> None:
    @dataclass(frozen=True)
    class Answer:
        model: str
        answer: str

    async def query_model(model: str, question: str) -> Answer:
        return Answer(model, "Paris" if model != "gemini-pro" else "Lyon")

    async def query_ensemble(question: str) -> tuple[str, list[Answer]]:
        answers = await legato.parallel(
            gpt4=query_model("gpt-4o", question),
            claude=query_model("claude-3-opus", question),
            gemini=query_model("gemini-pro", question),
        )
        consensus = await legato.vote(
            (query_model(m, question) for m in ("gpt-4o", "claude-3-opus", "gemini-pro")),
            key=lambda a: a.answer,
        )
        return consensus.answer, [answers.gpt4, answers.claude, answers.gemini]

    answer, models = await query_ensemble("capital of France?")
    assert answer == "Paris"
    assert [m.model for m in models] == ["gpt-4o", "claude-3-opus", "gemini-pro"]
