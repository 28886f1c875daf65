"""Agents: tools with their grants per class, state per instance, calls durable in workflows."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

import legato
from legato.agents import Agent, BoundTool, Budget, Grant, Tool, ToolRegistry, Use, use

calls: Counter[str] = Counter()


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls.clear()


reg = ToolRegistry()


class Analyst(Agent):
    """Declared before its tool exists: ``use`` looks the name up on first use."""

    chat = use("core.chat", grant=Grant(model="gpt-4o", max_tokens=1024), registry=reg)

    @legato.cell(effects={"llm"})
    async def analyze(self, text: str) -> dict[str, object]:
        return await self.chat(f"sentiment of {text}")


class Critic(Agent):
    chat = use("core.chat", grant=Grant(model="claude-3-opus", max_tokens=64, budget=2),
               registry=reg)

    @legato.cell(effects={"llm"})
    async def analyze(self, text: str) -> dict[str, object]:
        return await self.chat(f"sentiment of {text}", max_tokens=32)


@legato.tool("core.chat", effects={"llm"}, registry=reg)
async def core_chat(prompt: str, *, model: str, max_tokens: int | None = None) -> dict[str, object]:
    calls[model] += 1
    await asyncio.sleep(0)
    sentiment = "positive" if "good" in prompt else "negative"
    return {"model": model, "max_tokens": max_tokens, "sentiment": sentiment}


async def test_an_agent_calls_its_tool_with_its_grant() -> None:
    reply = await Analyst().analyze("a good day")
    assert reply == {"model": "gpt-4o", "max_tokens": 1024, "sentiment": "positive"}


async def test_two_agents_with_different_grants_on_one_tool_do_not_interfere() -> None:
    a, b = Analyst(), Critic()
    first, second = await legato.parallel(a.analyze("good"), b.analyze("bad"))
    assert (first["model"], first["max_tokens"]) == ("gpt-4o", 1024)
    assert (second["model"], second["max_tokens"]) == ("claude-3-opus", 32)
    with pytest.raises(legato.GrantViolation, match="max_tokens does not allow 100"):
        await b.chat("x", max_tokens=100)  # Critic's cap, not Analyst's
    assert (await a.chat("x", max_tokens=100))["max_tokens"] == 100
    assert a.chat.grant != b.chat.grant and a.chat.tool is b.chat.tool is core_chat


async def test_each_instance_counts_its_own_grant_budget() -> None:
    first, second = Critic(), Critic()
    await first.analyze("1")
    await first.analyze("2")
    with pytest.raises(legato.GrantViolation, match="allows 2 calls through this binding"):
        await first.analyze("3")
    await second.analyze("1")  # a fresh instance has its own budget
    assert first.chat is first.chat and first.chat is not second.chat
    assert (first.chat.calls, second.chat.calls) == (2, 1)


async def test_an_agent_budget_is_copied_per_instance() -> None:
    class Frugal(Agent):
        budget = Budget(llm=1)
        chat = use(core_chat, grant=Grant(model="small"))

    one, two = Frugal(), Frugal()
    await one.chat("a")
    await two.chat("a")
    with pytest.raises(legato.GrantViolation) as info:
        await one.chat("b")
    assert info.value.constraint == "budget[llm]"
    assert Frugal.budget is not None and Frugal.budget.used == 0  # the template is untouched

    class Own(Agent):
        chat = use(core_chat, grant=Grant(model="small"))

        def __init__(self, calls: int) -> None:
            self.budget = Budget(calls=calls)  # an instance attribute is the instance's own

    own = Own(1)
    await own.chat("a")
    with pytest.raises(legato.GrantViolation, match="allows 1 calls in total"):
        await own.chat("b")


def test_on_the_class_a_use_is_the_declaration() -> None:
    assert isinstance(Analyst.chat, Use)
    assert repr(Analyst.chat) == (
        "legato.use('core.chat', grant=Grant(model='gpt-4o', max_tokens=1024))")
    assert set(Analyst.uses()) == {"chat"}
    agent = Analyst()
    bound = agent.tools()["chat"]
    assert isinstance(bound, BoundTool) and bound is agent.chat
    assert bound.schema["function"]["name"] == "core_chat"
    assert repr(bound) == (
        "<legato.tool 'core.chat' with Grant(model='gpt-4o', max_tokens=1024)>")


def test_a_bad_use_fails_on_first_use_with_the_reason() -> None:
    class Lost(Agent):
        chat = use("core.nope", registry=reg)
        typo = use(core_chat, grant=Grant(modle="x"))

    agent = Lost()  # making an instance resolves nothing
    with pytest.raises(LookupError, match=r"no tool named 'core.nope'; registered tools: "
                                          r"\['core.chat', 'core.wait'\]"):
        _ = agent.chat
    with pytest.raises(TypeError, match=r"modle= needs a parameter 'modle'"):
        _ = agent.typo
    with pytest.raises(TypeError, match=r"takes a tool name or a @legato\.tool"):
        use(42)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match=r"grant= takes a legato\.Grant"):
        use("x", grant={"model": "m"})  # type: ignore[arg-type]


def test_instances_are_cheap() -> None:
    started = time.perf_counter()
    agents = [Analyst() for _ in range(10_000)]
    elapsed = time.perf_counter() - started
    assert elapsed < 0.5 and all(not vars(a) for a in agents[:10])


async def test_the_builtin_tools_bind_lazily_through_the_default_registry() -> None:
    pytest.importorskip("httpx")

    class Writer(Agent):
        chat = use("llm.chat", grant=Grant(model="m", max_tokens=256))
        fetch = use("http.get", grant=Grant(domain="*.python.org", timeout=10))

    writer = Writer()
    assert isinstance(writer.chat.tool, Tool) and writer.chat.tool.effects == {"llm"}
    assert writer.fetch.tool.effects == {"http"}
    with pytest.raises(legato.GrantViolation, match="domain"):
        await writer.fetch("https://evil.example/")


# -- in workflows: the seed's EnsembleAnalyzer ---------------------------------------------

gate: asyncio.Event
entered: asyncio.Event


@legato.tool("core.wait", registry=reg)
async def wait_for_gate() -> str:
    calls["wait"] += 1
    entered.set()
    await gate.wait()
    return "done"


class Ensemble(Agent):
    @legato.cell(effects={"llm"})
    async def analyze(self, text: str) -> dict[str, object]:
        a, b = Analyst(), Critic()
        r1, r2 = await legato.parallel(a.analyze(text), b.analyze(text))
        sentiment = await legato.vote(_value(r1["sentiment"]), _value(r2["sentiment"]))
        await wait_for_gate()  # a pure tool: allowed in this llm cell
        return {"sentiment": sentiment, "models": [r1["model"], r2["model"]]}


async def _value(value: object) -> object:
    return value


@legato.workflow(name="agents.core.ensemble")
async def ensemble(text: str) -> dict[str, object]:
    return await Ensemble().analyze(text)


async def test_agent_tool_calls_in_a_workflow_are_recorded_and_not_paid_twice(db: str) -> None:
    global gate, entered
    gate, entered = asyncio.Event(), asyncio.Event()
    async with legato.Runtime(db) as rt:
        await rt.start(ensemble, "a good film", id="ens-1")
        await entered.wait()
        info = await rt.get("ens-1")
    assert sorted((s.kind, s.name) for s in info.steps if s.kind == "step") == [
        ("step", "core.chat"), ("step", "core.chat")]
    gate.set()
    async with legato.Runtime(db) as rt:  # replays: the model calls come from the history
        result = await rt.handle("ens-1").result(timeout=5)
    assert result == {"sentiment": "positive", "models": ["gpt-4o", "claude-3-opus"]}
    assert calls == {"gpt-4o": 1, "claude-3-opus": 1, "wait": 2}
