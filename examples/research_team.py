"""Lumen's ``ResearchTeam`` orchestration as a durable legato workflow.

Run: ``.venv/bin/python examples/research_team.py``. A real HTTP server on
127.0.0.1 (``legato.agents.testing.ScriptedModel``) plays the model and the
three search engines; point ``OpenAIChat`` at vLLM, Ollama or a hosted API
instead and nothing else changes.

The Lumen original::

    orchestration ResearchTeam
      use tool llm.chat as Chat
      use tool http.get as Fetch
      grant Chat model "gpt-4o"

      cell research(topic: String) -> Report / {llm, http}
        let sources = await parallel for engine in ["google", "bing", "duckduckgo"]
          search(engine, topic)
        end
        let quick = await race
          summarize_fast(sources)
          summarize_thorough(sources)
        end
        let insights = await vote
          extract_insights_a(sources)
          extract_insights_b(sources)
          extract_insights_c(sources)
        end
        return combine(quick, insights)
      end
      ...
    end

Every tool call is a recorded step: the second ``rt.run`` below returns the
recorded report and sends no request at all.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote_plus, urlsplit

import legato
from legato.agents import OpenAIChat, set_model
from legato.agents.testing import ScriptedModel

ENGINES = ["google", "bing", "duckduckgo"]


@dataclass(frozen=True)
class Report:
    topic: str
    summary: str
    insight: str
    sources: list[str]


class ResearchTeam(legato.Agent):
    chat = legato.use("llm.chat", grant=legato.Grant(model="gpt-4o", max_tokens=256))
    fetch = legato.use("http.get", grant=legato.Grant(domain="127.0.0.1", timeout=5))

    @legato.cell(effects={"llm", "http"})
    async def research(self, topic: str, search_base: str) -> Report:
        # Gather sources in parallel
        sources = await legato.parallel(
            self.search(engine, topic, search_base) for engine in ENGINES)
        # Race for a quick summary: the first good answer wins, the other is cancelled
        quick = await legato.race(self.summarize_fast(sources),
                                  self.summarize_thorough(sources))
        # Vote on the best insight; free text is compared after normalisation
        insight = await legato.vote(
            self.extract_insight(sources, "a"),
            self.extract_insight(sources, "b"),
            self.extract_insight(sources, "c"),
            key=normalise,
        )
        return Report(topic, quick, insight, sources)

    @legato.cell(effects={"http"})
    async def search(self, engine: str, topic: str, search_base: str) -> str:
        return await self.fetch(f"{search_base}/search/{engine}?q={quote_plus(topic)}")

    @legato.cell(effects={"llm"})
    async def summarize_fast(self, sources: list[str]) -> str:
        return await self.chat("Summarize briefly: " + " | ".join(sources), max_tokens=32)

    @legato.cell(effects={"llm"})
    async def summarize_thorough(self, sources: list[str]) -> str:
        return await self.chat("Summarize thoroughly: " + " | ".join(sources))

    @legato.cell(effects={"llm"})
    async def extract_insight(self, sources: list[str], style: str) -> str:
        return await self.chat(f"Extract one insight (style {style}): " + " | ".join(sources))


def normalise(answer: str) -> str:
    """'Insight: Solar is now the cheapest.' and 'solar is now the cheapest' agree."""
    answer = re.sub(r"^\s*insight\s*:\s*", "", answer, flags=re.IGNORECASE)
    return re.sub(r"[^a-z0-9 ]", "", answer.lower()).strip()


@legato.workflow(name="research_team")
async def research(topic: str, search_base: str) -> Report:
    return await ResearchTeam().research(topic, search_base)


# -- the stand-in model and search engines ------------------------------------------


def model_reply(request: dict[str, Any]) -> str:
    prompt: str = request["messages"][-1]["content"]
    if prompt.startswith("Summarize briefly"):
        return "Renewables supplied most new power capacity."
    if prompt.startswith("Summarize thoroughly"):
        time.sleep(1.0)  # thorough is slow: the race never waits for it
        return "A long, careful summary."
    return {
        "a": "Insight: Solar is now the cheapest new power.",
        "b": "solar is now the cheapest new power",
        "c": "Wind needs storage.",
    }[prompt[len("Extract one insight (style ")]]


def search_page(path: str) -> str | None:
    parts = urlsplit(path)
    engine = parts.path.removeprefix("/search/")
    topic = parse_qs(parts.query).get("q", ["?"])[0]
    return f"{engine}: 3 results about {topic}" if engine in ENGINES else None


async def main() -> None:
    with ScriptedModel(model_reply, pages=search_page) as server, \
            tempfile.TemporaryDirectory() as tmp:
        async with OpenAIChat(server.base_url) as model, \
                legato.Runtime(Path(tmp) / "research.db") as rt:
            set_model(model)  # what llm.chat calls; by default built from OPENAI_* variables
            report = await rt.run(research, "renewable energy", server.url, id="research-1")
            print(f"summary:  {report.summary}")
            print(f"insight:  {report.insight}")
            print(f"sources:  {report.sources}")
            sent = server.count
            print(f"requests: {sent} (3 searches, 2 summaries raced, 3 extractors)")
            again = await rt.run(research, "renewable energy", server.url, id="research-1")
            assert again == report and server.count == sent
            print("second run: the recorded report, no request sent")
            steps = (await rt.get("research-1")).steps
            print("recorded:", ", ".join(sorted({s.name for s in steps if s.name})))
        set_model(None)


if __name__ == "__main__":
    asyncio.run(main())
