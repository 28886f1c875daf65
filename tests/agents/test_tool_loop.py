"""run_tools: a model choosing tools, against a real ScriptedModel server (no mocks)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

import legato
from legato._serde import JsonSerializer
from legato.agents import Grant, ToolRegistry
from legato.agents._builtin import http_get, llm_chat
from legato.agents._openai import ChatResponse, ModelError, OpenAIChat, ToolCall, set_model
from legato.agents._tool_loop import run_tools
from legato.agents.testing import ScriptedModel

calls: Counter[str] = Counter()
tools = ToolRegistry()
Script = Callable[[dict[str, Any]], str | dict[str, Any]]


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls.clear()


@legato.tool("loop.weather", registry=tools)
async def weather(city: str) -> dict[str, Any]:
    """The weather in a city now.

    Args:
        city: the city's name.
    """
    calls[f"weather:{city}"] += 1
    if city == "Atlantis":
        raise LookupError("no such city: Atlantis")
    return {"city": city, "temp": 21}


both_running = asyncio.Event()


@legato.tool("loop.slow", registry=tools)
async def slow(n: int) -> int:
    """Wait until two calls run at the same time, then return n * 10."""
    calls["slow"] += 1
    if calls["slow"] == 2:
        both_running.set()
    await asyncio.wait_for(both_running.wait(), timeout=2)  # sequential calls time out
    return n * 10


def last(body: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = body["messages"][-1]
    return message


def tool_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in body["messages"] if m["role"] == "tool"]


def ask(*requested: tuple[str, dict[str, Any] | str]) -> dict[str, Any]:
    return {"tool_calls": [{"name": n, "arguments": a} for n, a in requested]}


def weather_script(body: dict[str, Any]) -> str | dict[str, Any]:
    """Turn 1: ask for the weather; turn 2: answer with the tool's result."""
    if last(body)["role"] != "tool":
        return ask(("loop_weather", {"city": "Paris"}))
    result = json.loads(last(body)["content"])
    return f"It is {result['temp']} degrees in {result['city']}."


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., ScriptedModel]]:
    """Start a ScriptedModel with a script and make it the process's model."""
    started: list[ScriptedModel] = []

    def start(script: Script, **kwargs: Any) -> ScriptedModel:
        server = ScriptedModel(script, **kwargs).start()
        started.append(server)
        set_model(OpenAIChat(server.base_url, retry=None))
        return server

    yield start
    set_model(None)
    for server in started:
        await asyncio.to_thread(server.close)


CHAT = Grant(model="m-granted", max_tokens=64)


# -- the loop -------------------------------------------------------------------------


async def test_the_model_asks_for_a_tool_gets_the_result_and_answers(serve) -> None:
    server = serve(weather_script)
    answer = await run_tools(llm_chat.with_grant(CHAT), "Weather in Paris?", [weather])
    assert answer == "It is 21 degrees in Paris."
    assert calls == {"weather:Paris": 1} and server.count == 2
    first, second = (r.body for r in server.requests)
    assert [t["function"]["name"] for t in first["tools"]] == ["loop_weather"]
    assert first["messages"] == [{"role": "user", "content": "Weather in Paris?"}]
    assert second["messages"][1:] == [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "loop_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"city": "Paris", "temp": 21}'},
    ]


async def test_the_grant_of_chat_applies_to_every_model_turn(serve) -> None:
    server = serve(weather_script)
    chat = llm_chat.with_grant(Grant(model="m-granted", max_tokens=64, budget=5))
    await run_tools(chat, "Weather?", [weather])
    assert [(r.body["model"], r.body["max_tokens"]) for r in server.requests] == [
        ("m-granted", 64), ("m-granted", 64)]
    assert chat.calls == 2  # each turn is a call through chat's binding
    with pytest.raises(legato.GrantViolation, match="max_tokens"):
        await run_tools(chat, "Weather?", [weather], max_tokens=500)
    with pytest.raises(legato.GrantViolation, match="budget"):
        await run_tools(llm_chat.with_grant(Grant(model="m", budget=1)), "Weather?", [weather])
    assert server.count == 3  # the refused turns sent nothing


async def test_calls_of_one_turn_run_concurrently_and_come_back_in_order(serve) -> None:
    global both_running
    both_running = asyncio.Event()

    def script(body: dict[str, Any]) -> str | dict[str, Any]:
        if last(body)["role"] != "tool":
            return ask(("loop_slow", {"n": 1}), ("loop_slow", {"n": 2}))
        return " + ".join(m["content"] for m in tool_messages(body))

    serve(script)
    assert await run_tools(llm_chat.with_grant(CHAT), "Go", [slow]) == "10 + 20"


async def test_a_url_outside_the_grant_goes_back_to_the_model_and_nothing_is_fetched(
        serve) -> None:
    def script(body: dict[str, Any]) -> str | dict[str, Any]:
        if last(body)["role"] != "tool":
            return ask(("http_get", {"url": f"{server.url}/secret"}))
        return f"could not: {last(body)['content']}"

    server = serve(script, pages={"/secret": "the launch codes"})
    fetch = http_get.with_grant(Grant(domain="*.example.com"))
    answer = await run_tools(llm_chat.with_grant(CHAT), "Read it", [fetch])
    assert answer.startswith("could not: error: GrantViolation: tool 'http.get' refused by "
                             "its grant: domain does not allow")
    assert "launch codes" not in answer
    assert [r.method for r in server.requests] == ["POST", "POST"]  # no GET reached it


async def test_unknown_tools_bad_arguments_and_failures_go_back_to_the_model(serve) -> None:
    def script(body: dict[str, Any]) -> str | dict[str, Any]:
        if last(body)["role"] != "tool":
            return ask(("nope", {}), ("loop_weather", {"town": "Paris"}),
                       ("loop_weather", {"city": "Atlantis"}), ("loop_weather", "{not json"))
        return "\n".join(m["content"] for m in tool_messages(body))

    server = serve(script)
    answer = await run_tools(llm_chat.with_grant(CHAT), "Weather?", [weather])
    assert answer.splitlines() == [
        "error: there is no tool 'nope'; the tools are ['loop_weather']",
        "error: TypeError: can't call tool 'loop.weather' with these arguments: got an "
        "unexpected keyword argument 'town'; its signature is loop.weather(city: str) "
        "-> dict[str, typing.Any]",
        "error: LookupError: no such city: Atlantis",
        "error: the arguments of loop_weather are not a JSON object ('{not json'); send them "
        "again as a JSON object",
    ]
    sent = server.requests[1].body["messages"][1]["tool_calls"]
    assert sent[3]["function"]["arguments"] == "{not json"  # the model's text, as it was


async def test_more_turns_than_max_turns_raise_naming_the_limit_and_the_tools(serve) -> None:
    server = serve(lambda body: ask(("loop_weather", {"city": "Paris"})))
    with pytest.raises(legato.LegatoError, match=r"after 2 model turns \(max_turns=2\).*"
                                                 r"\(loop_weather\)"):
        await run_tools(llm_chat.with_grant(CHAT), "Weather?", [weather], max_turns=2)
    assert server.count == 2 and calls == {"weather:Paris": 1}


async def test_an_undeclared_effect_is_a_bug_and_is_raised(serve) -> None:
    serve(lambda body: ask(("http_get", {"url": "https://example.com/"})))

    @legato.cell(effects={"llm"})
    async def only_llm() -> str:
        return await run_tools(llm_chat.with_grant(CHAT), "Read it", [http_get])

    with pytest.raises(legato.EffectViolation, match="http"):
        await only_llm()


async def test_wrong_arguments_fail_at_once() -> None:
    with pytest.raises(TypeError, match=r"takes the llm\.chat tool"):
        await run_tools(weather, "x", [])
    with pytest.raises(ValueError, match="max_turns"):
        await run_tools(llm_chat, "x", [], max_turns=0)
    with pytest.raises(ValueError, match="offered to the model as 'loop_weather'"):
        await run_tools(llm_chat, "x", [weather, weather.with_grant(None)])


# -- the client and the response --------------------------------------------------------


async def test_the_client_sends_tools_and_parses_tool_calls(serve) -> None:
    server = serve(lambda body: ask(("loop_weather", {"city": "Oslo"}), ("x", "[1]")))
    async with OpenAIChat(server.base_url) as client:
        reply = await client.complete("hi", model="m", tools=[weather.schema])
        plain = await client.complete("hi", model="m", tools=[])
        with pytest.raises(ModelError, match="does not stream tool calls"):
            async for _ in client.stream("hi", model="m", retry=None):
                pass
    assert reply.finish_reason == "tool_calls" and reply.text == ""
    assert reply.tool_calls == (ToolCall("call_1", "loop_weather", {"city": "Oslo"}),
                                ToolCall("call_2", "x", {"_raw": "[1]"}))
    assert server.requests[0].body["tools"] == [weather.schema]
    assert "tools" not in server.requests[1].body and plain.tool_calls


def test_a_chat_response_with_tool_calls_can_be_a_step_result() -> None:
    reply = ChatResponse("", "m", "tool_calls", {"total_tokens": 3},
                         (ToolCall("call_1", "loop_weather", {"city": "Oslo", "days": [1, 2]}),))
    serializer = JsonSerializer()
    assert serializer.loads(serializer.dumps(reply)) == reply


# -- in a workflow ----------------------------------------------------------------------

gate = asyncio.Event()
entered = asyncio.Event()


@legato.tool("loop.gated", registry=tools)
async def gated() -> str:
    """Wait until the test opens the gate."""
    calls["gated"] += 1
    entered.set()
    await gate.wait()
    return "opened"


class Forecaster(legato.Agent):
    chat = legato.use(llm_chat, grant=Grant(model="m-granted", max_tokens=64))
    weather = legato.use(weather)
    gated = legato.use(gated)

    @legato.cell(effects={"llm"})
    async def forecast(self, question: str) -> str:
        return await run_tools(self.chat, question, [self.weather, self.gated])


@legato.workflow(name="agents.loop.forecast")
async def forecast(question: str) -> str:
    return await Forecaster().forecast(question)


def forecast_script(body: dict[str, Any]) -> str | dict[str, Any]:
    done = len(tool_messages(body))
    if done == 0:
        return ask(("loop_weather", {"city": "Paris"}), ("loop_weather", {"city": "Oslo"}))
    if done == 2:
        return ask(("loop_gated", {}))
    return f"forecast from {done} tool results"


async def test_turns_and_tool_calls_are_recorded_steps_and_never_paid_twice(
        serve, db: str) -> None:
    global gate, entered
    gate, entered = asyncio.Event(), asyncio.Event()  # one pair per event loop
    server = serve(forecast_script)
    async with legato.Runtime(db) as rt:
        await rt.start(forecast, "Paris or Oslo?", id="loop-1")
        await entered.wait()
        info = await rt.get("loop-1")
    # leaving the runtime released the workflow inside loop.gated: the next one replays
    assert sorted(s.name for s in info.steps if s.kind == "step") == [
        "llm.complete", "llm.complete", "loop.weather", "loop.weather"]
    assert server.count == 2
    gate.set()
    async with legato.Runtime(db) as rt:
        assert await rt.handle("loop-1").result(timeout=5) == "forecast from 3 tool results"
        info = await rt.get("loop-1")
    assert server.count == 3  # only the last turn was new
    assert calls == {"weather:Paris": 1, "weather:Oslo": 1, "gated": 2}
    assert [r.body["model"] for r in server.requests] == ["m-granted"] * 3
    assert sorted(s.name for s in info.steps if s.kind == "step") == [
        "llm.complete", "llm.complete", "llm.complete", "loop.gated", "loop.weather",
        "loop.weather"]
    async with legato.Runtime(db) as rt:  # the same id again: the recorded answer
        assert await rt.run(forecast, "Paris or Oslo?", id="loop-1") == (
            "forecast from 3 tool results")
    assert server.count == 3
