"""Lumen's ``EnsembleAnalyzer``: two agents with different model grants, then a vote.

Run: ``.venv/bin/python examples/ensemble_analyzer.py``. A real HTTP server on
127.0.0.1 (``legato.agents.testing.ScriptedModel``) answers for both models.

The Lumen original::

    agent ModelA
      use tool llm.chat as Chat
      grant Chat model "gpt-4o"
      cell analyze(text: String) -> Analysis / {llm} ... end
    end

    agent ModelB
      use tool llm.chat as Chat
      grant Chat model "claude-3-opus"
      cell analyze(text: String) -> Analysis / {llm} ... end
    end

    orchestration EnsembleAnalyzer
      cell analyze(text: String) -> ConsensusAnalysis / {llm}
        let a = ModelA()
        let b = ModelB()
        let analyses = await parallel
          r1 = a.analyze(text)
          r2 = b.analyze(text)
        end
        let sentiment = await vote
          r1.sentiment
          r2.sentiment
        return ConsensusAnalysis(sentiment: sentiment, details: combine(r1, r2))
      end
    end

Each agent's grant is its own: the same ``llm.chat`` tool is called with
``gpt-4o`` by one and ``claude-3-opus`` by the other.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import legato
from legato.agents import OpenAIChat, set_model
from legato.agents.testing import ScriptedModel


@dataclass(frozen=True)
class Analysis:
    model: str
    sentiment: str
    details: str


@dataclass(frozen=True)
class ConsensusAnalysis:
    sentiment: str
    details: list[str]


PROMPT = 'Answer in JSON {"sentiment": ..., "details": ...}. Text: '


class ModelA(legato.Agent):
    chat = legato.use("llm.chat", grant=legato.Grant(model="gpt-4o", max_tokens=200))

    @legato.cell(effects={"llm"})
    async def analyze(self, text: str) -> Analysis:
        return parse("gpt-4o", await self.chat(PROMPT + text))


class ModelB(legato.Agent):
    chat = legato.use("llm.chat", grant=legato.Grant(model="claude-3-opus", max_tokens=200))

    @legato.cell(effects={"llm"})
    async def analyze(self, text: str) -> Analysis:
        return parse("claude-3-opus", await self.chat(PROMPT + text))


def parse(model: str, answer: str) -> Analysis:
    fields = json.loads(answer)
    return Analysis(model, fields["sentiment"], fields["details"])


@legato.cell(effects={"llm"})
async def ensemble_analyze(text: str) -> ConsensusAnalysis:
    a, b = ModelA(), ModelB()
    # Get analyses in parallel (as futures, so the vote can count them)
    r1, r2 = legato.spawn(a.analyze(text)), legato.spawn(b.analyze(text))
    analyses = await legato.parallel(r1, r2)
    # Vote on sentiment; "Positive" and "positive" are one answer
    winner = await legato.vote(r1, r2, key=lambda r: r.sentiment.lower())
    return ConsensusAnalysis(winner.sentiment.lower(), [r.details for r in analyses])


@legato.workflow(name="ensemble_analyzer")
async def analyze_review(text: str) -> ConsensusAnalysis:
    return await ensemble_analyze(text)


REPLIES = {
    "gpt-4o": '{"sentiment": "Positive", "details": "praises the battery life"}',
    "claude-3-opus": '{"sentiment": "positive", "details": "enthusiastic, one complaint"}',
}


async def main() -> None:
    with ScriptedModel(REPLIES) as server, tempfile.TemporaryDirectory() as tmp:
        async with OpenAIChat(server.base_url) as model, \
                legato.Runtime(Path(tmp) / "ensemble.db") as rt:
            set_model(model)
            review = "The battery lasts two days. The case scratches easily."
            consensus = await rt.run(analyze_review, review, id="review-1")
            print(f"sentiment: {consensus.sentiment}")
            print(f"details:   {consensus.details}")
            print("models asked:", sorted(r.body["model"] for r in server.requests))
            again = await rt.run(analyze_review, review, id="review-1")
            assert again == consensus and server.count == 2
            print("second run: the recorded consensus, no model called")
        set_model(None)


if __name__ == "__main__":
    asyncio.run(main())
