"""Tools: registration, schemas, the registry, plain calls and durable calls in workflows."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import Counter

import pytest

import legato
from legato.agents import Tool, ToolRegistry

calls: Counter[str] = Counter()


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls.clear()


tools = ToolRegistry()


@legato.tool("test.add", effects={"math"}, registry=tools)
async def add(a: int, b: int = 2) -> int:
    """Add two numbers.

    Args:
        a: the first number.
        b: the second number, which has a
            description on two lines.
    """
    calls["add"] += 1
    return a + b


@legato.tool("test.search", effects="http", registry=tools, description="Search the web.")
async def search(query: str, engines: list[str] | None = None, **options: object) -> list[str]:
    calls[f"search:{query}"] += 1
    return [f"{engine}:{query}" for engine in engines or ["google"]]


async def test_a_tool_is_an_awaitable_call_of_the_function() -> None:
    assert isinstance(add, Tool)
    assert await add(1) == 3
    assert await add(a=1, b=5) == 6
    assert add.name == "test.add" and add.effects == frozenset({"math"})
    assert search.effects == frozenset({"http"})  # one effect given as a string
    assert repr(add) == "<legato.tool 'test.add' effects=['math']>"


async def test_wrong_arguments_name_the_tool_and_its_signature() -> None:
    with pytest.raises(TypeError,
                       match=r"can't call tool 'test.add'.*test.add\(a: int, b: int = 2\)"):
        await add(1, c=3)  # type: ignore[call-arg]
    assert not calls


def test_the_schema_is_an_openai_function_tool_derived_from_the_signature() -> None:
    schema = add.schema
    assert schema == {
        "type": "function",
        "function": {
            "name": "test_add",  # OpenAI refuses dots in function names
            "description": "Add two numbers.",
            "parameters": {
                "type": "object",
                "properties": {
                    "a": {"type": "integer", "title": "A", "description": "the first number."},
                    "b": {"type": "integer", "title": "B", "default": 2,
                          "description": "the second number, which has a description on two "
                                         "lines."},
                },
                "required": ["a"],
                "additionalProperties": False,
            },
        },
    }
    params = search.schema["function"]["parameters"]
    assert search.schema["function"]["description"] == "Search the web."
    assert params["required"] == ["query"]
    assert params["additionalProperties"] is True  # **options
    assert params["properties"]["engines"]["anyOf"][0] == {
        "type": "array", "items": {"type": "string"}}


def test_import_legato_imports_neither_pydantic_nor_httpx() -> None:
    code = ("import sys, legato, legato.agents; "
            "legato.tool('x.y')\n"
            "assert 'pydantic' not in sys.modules and 'httpx' not in sys.modules, "
            "[m for m in sys.modules if m.startswith(('pydantic', 'httpx'))]")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_registry_finds_tools_by_name_or_schema_name() -> None:
    assert tools.get("test.add") is add
    assert tools["test_add"] is add  # what a model answers with
    assert "test.search" in tools and "nope" not in tools
    assert tools.names() == ["test.add", "test.search"]
    assert [t.name for t in tools] == ["test.add", "test.search"]


def test_an_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(LookupError, match=r"no tool named 'test.mul'; registered tools: "
                                          r"\['test.add', 'test.search'\]"):
        tools.get("test.mul")


def test_a_taken_name_is_an_error_unless_it_is_the_same_function_again() -> None:
    reg = ToolRegistry()

    async def one() -> int:
        return 1

    first = legato.tool("dup", registry=reg)(one)
    again = legato.tool("dup", registry=reg)(one)  # a re-import defines it again: replaced
    assert reg["dup"] is again is not first

    async def other() -> int:
        return 2

    with pytest.raises(ValueError, match=r"a tool named 'dup' is already registered \(.*one\); "
                                         r".*other can't take the name"):
        legato.tool("dup", registry=reg)(other)
    reg.unregister("dup")
    assert "dup" not in reg


def test_bad_definitions_fail_at_decoration() -> None:
    def sync() -> None: ...

    async def star(*args: int) -> None: ...

    async def positional(a: int, /) -> None: ...

    with pytest.raises(TypeError, match="needs an 'async def'"):
        legato.tool("bad", registry=ToolRegistry())(sync)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="parameter 'args' can't be passed by name"):
        legato.tool("bad", registry=ToolRegistry())(star)
    with pytest.raises(TypeError, match="parameter 'a' can't be passed by name"):
        legato.tool("bad", registry=ToolRegistry())(positional)
    with pytest.raises(TypeError, match="effects are non-empty strings"):
        legato.tool("bad", effects={1}, registry=ToolRegistry())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"retry= takes a legato\.Retry"):
        legato.tool("bad", retry=3, registry=ToolRegistry())  # type: ignore[arg-type]


async def test_the_tool_timeout_cancels_an_attempt() -> None:
    cancelled = asyncio.Event()

    @legato.tool("test.slow", timeout=0.05, registry=ToolRegistry())
    async def slow() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(TimeoutError, match=r"tool 'test.slow' did not finish within 0.05 s "
                                           r"\(its timeout=\) and was cancelled"):
        await slow()
    assert cancelled.is_set()


async def test_the_retry_policy_applies_to_plain_calls() -> None:
    @legato.tool("test.flaky", registry=ToolRegistry(),
                 retry=legato.Retry(attempts=3, initial=0.001, jitter=0))
    async def flaky() -> str:
        calls["flaky"] += 1
        if calls["flaky"] < 3:
            raise ConnectionError("try again")
        return "ok"

    assert await flaky() == "ok"
    assert calls["flaky"] == 3


# -- inside workflows ----------------------------------------------------------------

gate: asyncio.Event  # made by each test, in its own event loop
entered: asyncio.Event


other_tools = ToolRegistry()


@legato.tool("test.wait", registry=other_tools)
async def wait_for_gate() -> str:
    calls["wait"] += 1
    entered.set()
    await gate.wait()
    return "through"


@legato.workflow(name="agents.tools.recorded")
async def recorded(query: str) -> list[object]:
    found = await search(query, engines=["a", "b"])
    total = await add(2, b=3)
    passed = await wait_for_gate()
    return [found, total, passed]


async def test_tool_calls_in_a_workflow_are_recorded_steps_and_never_run_twice(db: str) -> None:
    global gate, entered
    gate, entered = asyncio.Event(), asyncio.Event()
    async with legato.Runtime(db) as rt:
        await rt.start(recorded, "legato", id="tools-1")
        await entered.wait()
        info = await rt.get("tools-1")
    # leaving the runtime released the workflow mid-call: the next one replays it
    assert [(s.position, s.kind, s.name) for s in info.steps] == [
        ("1", "step", "test.search"), ("2", "step", "test.add")]
    gate.set()
    async with legato.Runtime(db) as rt:
        result = await rt.handle("tools-1").result(timeout=5)
    assert result == [["a:legato", "b:legato"], 5, "through"]
    assert calls == {"search:legato": 1, "add": 1, "wait": 2}


@legato.workflow(name="agents.tools.retried")
async def retried() -> str:
    return await flaky_durable()


@legato.tool("test.flaky_durable", registry=other_tools,
             retry=legato.Retry(attempts=3, initial="1h", jitter=0))
async def flaky_durable() -> str:
    calls["flaky"] += 1
    if calls["flaky"] < 3:
        raise ConnectionError("try again")
    return "ok"


async def test_a_tool_retry_in_a_workflow_records_attempts_and_waits_durably(db: str) -> None:
    async with legato.Runtime(db, clock=legato.VirtualClock()) as rt:
        assert await rt.run(retried, id="tools-2") == "ok"
        info = await rt.get("tools-2")
    assert calls["flaky"] == 3
    assert {(s.position, s.kind, s.name) for s in info.steps} == {
        ("1", "step", "test.flaky_durable"),
        ("1.1", "attempt", "test.flaky_durable"), ("1.2", "sleep", ""),
        ("1.3", "attempt", "test.flaky_durable"), ("1.4", "sleep", "")}


async def test_a_circuit_breaker_refuses_calls_without_running_them() -> None:
    breaker = legato.CircuitBreaker(max_failures=1, reset_timeout=60)

    @legato.tool("test.down", circuit=breaker, registry=ToolRegistry())
    async def down() -> None:
        calls["down"] += 1
        raise ConnectionError("refused")

    with pytest.raises(ConnectionError):
        await down()
    with pytest.raises(legato.CircuitOpenError):
        await down()
    assert calls["down"] == 1


def test_every_public_name_of_legato_agents_has_a_docstring_with_an_example() -> None:
    import inspect

    import legato.agents as agents

    for name in ["Agent", "Budget", "Grant", "Tool", "ToolRegistry", "cell", "tool", "use",
                 "BoundTool"]:
        doc = inspect.getdoc(getattr(agents, name)) or ""
        assert "Example" in doc or ">>>" in doc, name


async def test_a_missing_argument_fails_before_the_function_runs() -> None:
    with pytest.raises(TypeError, match=r"can't call tool 'test.add': missing a required "
                                        r"argument: 'a'"):
        await add(b=1)  # type: ignore[call-arg]
    assert not calls
