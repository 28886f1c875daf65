"""legato's pytest plugin: its fixtures here, and its entry point in an isolated pytest run."""

from __future__ import annotations

import legato

pytest_plugins = ["pytester"]


@legato.workflow
async def waits_a_week(who: str) -> str:
    await legato.sleep("7d")
    return f"hello {who}"


async def test_legato_runtime_runs_workflows_in_virtual_time(legato_runtime):
    assert isinstance(legato_runtime, legato.Runtime)
    assert isinstance(legato_runtime.clock, legato.VirtualClock)
    assert await legato_runtime.run(waits_a_week, "ana", id="w") == "hello ana"
    assert (await legato_runtime.get("w")).status == "succeeded"


async def test_each_test_gets_a_fresh_store(legato_store_url):
    assert legato_store_url.startswith(("sqlite:///", "postgresql://"))
    async with legato.Runtime(legato_store_url, worker=False) as rt:
        assert await rt.list() == []


def test_the_entry_point_brings_the_fixtures_to_any_project(pytester, monkeypatch):
    monkeypatch.delenv("LEGATO_TEST_POSTGRES", raising=False)
    pytester.makepyfile(test_user='''
        import pytest
        import legato

        @legato.workflow
        async def greet(name: str) -> str:
            await legato.sleep("30d")
            return "hi " + name

        @pytest.mark.asyncio
        async def test_greet(legato_runtime):
            assert await legato_runtime.run(greet, "bo") == "hi bo"

        def test_url(legato_store_url):
            assert legato_store_url.startswith("sqlite:///")
    ''')
    # a subprocess: only installed entry points, no conftest of this repository
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=2)
    options = pytester.runpytest_subprocess("--help")
    options.stdout.fnmatch_lines(["*--legato-postgres=URL*"])
