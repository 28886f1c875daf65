"""Effects: cells declare them, tool calls and inner cells are checked at call time."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

import legato
from legato._serde import decode_error, encode_error
from legato.agents import Budget, EffectWarning, ToolRegistry

ran: Counter[str] = Counter()


@pytest.fixture(autouse=True)
def _reset() -> None:
    ran.clear()


tools = ToolRegistry()


@legato.tool("fx.fetch", effects={"http"}, registry=tools)
async def fetch(url: str) -> str:
    ran["fetch"] += 1
    return f"<{url}>"


@legato.tool("fx.ask", effects={"llm"}, registry=tools)
async def ask(prompt: str) -> str:
    ran["ask"] += 1
    return prompt.upper()


@legato.tool("fx.pure", registry=tools)
async def pure(x: int) -> int:
    ran["pure"] += 1
    return x * 2


@legato.cell(effects={"llm"})
async def summarize(text: str) -> str:
    return await ask(f"summarize {text}")


@legato.cell(effects={"llm"})
async def sneaky(url: str) -> str:
    return await fetch(url)


@legato.cell(effects={"llm"}, strict=False)
async def lenient(url: str) -> str:
    return await fetch(url)


async def test_a_declared_effect_is_allowed() -> None:
    assert await summarize("x") == "SUMMARIZE X"


async def test_an_undeclared_effect_is_refused_before_the_tool_runs() -> None:
    with pytest.raises(legato.EffectViolation) as info:
        await sneaky("https://example.com")
    err = info.value
    assert (err.callee, err.effect) == ("tool 'fx.fetch'", "http")
    assert str(err) == (
        "tool 'fx.fetch' has effect 'http', which cell 'sneaky' (effects=['llm']) does not "
        "allow; add 'http' to @legato.cell(effects=...) on sneaky, or make the call from a "
        "cell that declares it")
    assert ran["fetch"] == 0


async def test_a_lenient_cell_warns_and_lets_the_call_run() -> None:
    with pytest.warns(EffectWarning, match="tool 'fx.fetch' has effect 'http'"):
        assert await lenient("u") == "<u>"
    assert ran["fetch"] == 1


async def test_calls_outside_every_cell_are_not_checked() -> None:
    assert await fetch("u") == "<u>"
    assert await ask("q") == "Q"


async def test_a_pure_cell_may_call_pure_tools_only() -> None:
    @legato.cell
    async def double(x: int) -> int:
        return await pure(x)

    @legato.cell()
    async def impure() -> str:
        return await ask("q")

    assert await double(2) == 4
    with pytest.raises(legato.EffectViolation, match=r"cell 'test_a_pure_cell.*impure' "
                                                     r"\(effects=\[\]\)"):
        await impure()


async def test_the_innermost_cell_decides_and_inner_cells_may_only_narrow() -> None:
    @legato.cell(effects={"llm", "http"})
    async def research(topic: str) -> list[str]:
        # summarize (llm) narrows; tasks spawned here inherit this cell
        page, summary = await asyncio.gather(fetch(topic), summarize(topic))
        return [page, summary]

    @legato.cell(effects={"http"})
    async def search(topic: str) -> list[str]:
        return await research(topic)  # research's llm is more than search declares

    assert await research("t") == ["<t>", "SUMMARIZE T"]
    with pytest.raises(legato.EffectViolation) as info:
        await search("t")
    assert (info.value.callee, info.value.effect) == ("cell 'test_the_innermost_cell_decides_"
                                                      "and_inner_cells_may_only_narrow.<locals>."
                                                      "research'", "llm")
    assert ran["fetch"] == 1  # only the first research ran


async def test_cells_work_on_methods_and_keep_the_function_metadata() -> None:
    class Team:
        @legato.cell(effects="http")
        async def search(self, topic: str) -> str:
            """Search the web."""
            return await fetch(topic)

        @legato.cell(effects="http", name="Team.summarize")
        async def summarize(self, topic: str) -> str:
            return await ask(topic)

    team = Team()
    assert await team.search("q") == "<q>"
    assert Team.search.__doc__ == "Search the web."
    with pytest.raises(legato.EffectViolation, match=r"cell 'Team.summarize'"):
        await team.summarize("q")


def test_a_cell_must_be_async() -> None:
    def plain() -> None: ...

    with pytest.raises(TypeError, match=r"@legato.cell needs an 'async def'"):
        legato.cell(plain)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="effects are non-empty strings"):
        legato.cell(effects=[""])


def test_effect_violations_survive_being_recorded() -> None:
    err = legato.EffectViolation("tool 'x'", "http", "cell 'c' (effects=[])", "add it")
    back = decode_error(encode_error(err))
    assert type(back) is legato.EffectViolation and str(back) == str(err)


# -- budgets per effect ---------------------------------------------------------------------


async def test_a_budget_block_limits_calls_per_effect_and_in_total() -> None:
    with Budget(llm=2) as budget:
        await ask("1")
        await fetch("a")  # http is not limited
        await ask("2")
        with pytest.raises(legato.GrantViolation) as info:
            await ask("3")
    assert (info.value.constraint, info.value.value) == ("budget[llm]", 3)
    assert budget.remaining("llm") == 0 and budget.remaining("http") is None
    assert ran == {"ask": 2, "fetch": 1}
    await ask("outside")  # the block is over

    async with Budget(calls=1, http=5):
        await pure(1)
        with pytest.raises(legato.GrantViolation, match=r"allows 1 calls in total"):
            await fetch("b")


async def test_nested_budgets_all_count_and_tasks_share_them() -> None:
    outer = Budget(llm=3)
    with outer:
        with Budget(llm=1):
            await ask("a")
            with pytest.raises(legato.GrantViolation):
                await ask("b")  # refused by the inner budget: counted by neither
        results = await asyncio.gather(ask("c"), ask("d"), return_exceptions=True)
    assert results == ["C", "D"]
    assert outer.used == 3 and outer.remaining("llm") == 0


# -- deterministic workflows ------------------------------------------------------------


@legato.tool("fx.flaky_clock", effects={"time"}, durable=False, registry=tools)
async def unrecorded_clock() -> float:
    ran["clock"] += 1
    return 1.0


@legato.tool("fx.unrecorded_pure", durable=False, registry=tools)
async def unrecorded_pure(x: int) -> int:
    ran["unrecorded_pure"] += 1
    return x + 1


@legato.workflow(name="agents.fx.deterministic", deterministic=True)
async def deterministic_flow() -> list[object]:
    # recorded tool calls are fine, inside cells too; so is an unrecorded pure tool
    summary = await summarize("doc")
    page = await fetch("u")
    bumped = await unrecorded_pure(1)
    return [summary, page, bumped]


@legato.workflow(name="agents.fx.refused", deterministic=True)
async def refused_flow() -> float:
    return await unrecorded_clock()


@legato.workflow(name="agents.fx.plain")
async def plain_flow() -> float:
    return await unrecorded_clock()


async def test_a_deterministic_workflow_allows_recorded_tool_calls(db: str) -> None:
    async with legato.Runtime(db) as rt:
        assert await rt.run(deterministic_flow, id="d1") == ["SUMMARIZE DOC", "<u>", 2]
        info = await rt.get("d1")
    assert [s.name for s in info.steps] == ["fx.ask", "fx.fetch"]  # the pure one isn't recorded


async def test_a_deterministic_workflow_refuses_an_unrecorded_nondeterministic_tool(
        db: str) -> None:
    async with legato.Runtime(db) as rt:
        with pytest.raises(legato.EffectViolation) as info:
            await rt.run(refused_flow, id="d2")
        assert await rt.run(plain_flow, id="d3") == 1.0  # not deterministic: allowed
    assert str(info.value) == (
        "tool 'fx.flaky_clock' (durable=False) has effect 'time', which a deterministic "
        "workflow (its outcome would not be recorded) does not allow; declare the tool "
        "durable (the default), or call it inside a @legato.step")
    assert ran["clock"] == 1


async def test_an_unrecorded_tool_inside_a_step_of_a_deterministic_workflow_is_fine(
        db: str) -> None:
    @legato.step(name="fx.reading")
    async def reading() -> float:
        return await unrecorded_clock()

    @legato.workflow(name="agents.fx.stepped", deterministic=True)
    async def stepped() -> float:
        return await reading()

    async with legato.Runtime(db) as rt:
        assert await rt.run(stepped, id="d4") == 1.0
