"""Every example of ../shared/seeds/beluga-orchestration.md, in Python, running.

Each test quotes the Go it stands for. Beluga's ``ctx`` becomes asyncio's
task, its ``error`` returns become exceptions, and its seconds stay seconds.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import legato

calls: list[str] = []


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls.clear()


async def step1(data: dict[str, Any]) -> dict[str, Any]:
    calls.append("step1")
    return {**data, "step1": True}


async def step2(data: dict[str, Any]) -> dict[str, Any]:
    calls.append("step2")
    return {**data, "step2": True}


async def step3(data: dict[str, Any]) -> dict[str, Any]:
    calls.append("step3")
    return {**data, "step3": True}


steps = [step1, step2, step3]


# -- Chains ---------------------------------------------------------------------------


async def test_creating_and_executing_a_chain():
    """steps := []core.Runnable{step1, step2, step3}
    chain, err := orchestration.NewChain(steps,
        orchestration.WithChainTimeout(30), orchestration.WithChainRetries(3))
    input := map[string]any{"input": "data"}
    result, err := chain.Invoke(ctx, input)"""
    chain = legato.Chain(steps, timeout=30, retries=3)
    result = await chain.invoke({"input": "data"})
    assert result == {"input": "data", "step1": True, "step2": True, "step3": True}
    assert calls == ["step1", "step2", "step3"]


async def test_chain_with_memory():
    """mem, _ := memory.NewMemory(memory.MemoryTypeBuffer)
    chain, err := orchestration.NewChain(steps, orchestration.WithChainMemory(mem))"""
    mem = legato.Memory()

    async def remember(data: dict[str, Any], memory: legato.Memory) -> dict[str, Any]:
        memory.append(data["input"])
        return {**data, "history": memory.recent(10)}

    chain = legato.Chain([step1, remember], memory=mem)
    await chain.invoke({"input": "first"})
    result = await chain.invoke({"input": "second"})
    assert result["history"] == ["first", "second"]


# -- Graphs ---------------------------------------------------------------------------


def beluga_graph(runnable1: Any = step1, runnable2: Any = step2, runnable3: Any = step3,
                 **options: Any) -> legato.Graph:
    """orchestrator := orchestration.NewOrchestrator(); graph, err := orchestrator.CreateGraph()
    graph.AddNode("step1", runnable1) ... graph.AddEdge("step1", "step2") ...
    graph.SetEntryPoint([]string{"step1"}); graph.SetFinishPoint([]string{"step2", "step3"})"""
    graph = legato.Graph(**options)
    graph.add_node("step1", runnable1)
    graph.add_node("step2", runnable2)
    graph.add_node("step3", runnable3)
    graph.add_edge("step1", "step2")  # step2 depends on step1
    graph.add_edge("step1", "step3")  # step3 depends on step1
    graph.set_entry(["step1"])
    graph.set_finish(["step2", "step3"])
    return graph


async def test_graph_nodes_dependencies_entry_and_finish_with_step2_and_step3_in_parallel():
    both = {"step2": asyncio.Event(), "step3": asyncio.Event()}

    def meets(me: str, other: str) -> Any:
        async def node(data: dict[str, Any]) -> str:
            both[me].set()
            await asyncio.wait_for(both[other].wait(), 2)  # only if both run at once
            return me
        return node

    graph = beluga_graph(runnable2=meets("step2", "step3"), runnable3=meets("step3", "step2"))
    assert await graph.compile().invoke({"input": "data"}) == {"step2": "step2", "step3": "step3"}


# -- Workflows ------------------------------------------------------------------------


@legato.workflow(name="beluga_workflow_function")
async def workflow_function(input: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = await legato.Chain(steps).invoke(input)
    return out


async def test_workflows_execute_and_get_result(db):
    """workflow, err := orchestrator.CreateWorkflow(workflowFunction,
        orchestration.WithWorkflowID("my-workflow"))
    workflowID, runID, err := workflow.Execute(ctx, input)
    result, err := workflow.GetResult(ctx, workflowID, runID)"""
    async with legato.Runtime(db) as rt:
        handle = await rt.start(workflow_function, {"input": "data"}, id="my-workflow")
        workflow_id, run_id = handle.id, (await rt.get(handle.id)).run_id
        result = await rt.handle(workflow_id).result()
        assert workflow_id == "my-workflow" and run_id
        assert result["step3"] is True
        again = await rt.start(workflow_function, {"input": "data"}, id="my-workflow")
        assert await again.result() == result and (await rt.get("my-workflow")).run_id == run_id


# -- Task scheduling ------------------------------------------------------------------


@legato.workflow(name="beluga_retry_delay")
async def retry_delay_wf() -> str:
    attempts: list[float] = []

    async def flaky(x: str) -> str:
        attempts.append(0)
        if len(attempts) <= 3:
            raise ConnectionError("down")
        return f"{x} after {len(attempts)} attempts"

    return await legato.Chain([flaky], retries=3, retry_delay=2).invoke("ok")


async def test_retry_mechanisms(db):
    """orchestration.WithChainRetries(3), orchestration.WithChainRetryDelay(2*time.Second)"""
    clock = legato.VirtualClock()
    async with legato.Runtime(db, clock=clock) as rt:
        start = clock.now()
        assert await rt.run(retry_delay_wf, id="retry") == "ok after 4 attempts"
        assert clock.now() - start == pytest.approx(6.0)  # three durable 2 s waits


async def test_circuit_breakers():
    """orchestration.WithCircuitBreaker(maxFailures: 5, timeout: 60*time.Second)"""
    breaker = legato.CircuitBreaker(max_failures=5, reset_timeout=60)

    @legato.step(circuit=breaker)
    async def call_service(x: int) -> int:
        calls.append("service")
        raise ConnectionError("service down")

    chain = legato.Chain([call_service])
    for _ in range(5):
        with pytest.raises(ConnectionError):
            await chain.invoke(1)
    with pytest.raises(legato.CircuitOpenError):  # open: refused without running
        await chain.invoke(1)
    assert calls == ["service"] * 5


async def test_worker_pools():
    """scheduler := orchestration.NewEnhancedScheduler(10) // 10 workers
    scheduler.Start(); defer scheduler.Stop()"""
    async with legato.Pool(10) as scheduler:
        futures = [await scheduler.submit(step1, {"n": i}) for i in range(25)]
        assert scheduler.running <= 10
    assert [f.result()["n"] for f in futures] == list(range(25))


# -- Error handling -------------------------------------------------------------------


async def test_chain_error_handler():
    """orchestration.WithChainErrorHandler(func(err error) error { return err })"""
    seen: list[str] = []

    async def failing(data: Any) -> Any:
        raise ValueError("step2 failed")

    def handler(err: Exception, step: str, input: Any) -> Any:
        seen.append(f"{step}: {err}")  # custom error handling
        raise err

    chain = legato.Chain([step1, failing, step3], on_error=handler)
    with pytest.raises(ValueError, match="step2 failed"):
        await chain.invoke({})
    assert seen == ["failing: step2 failed"] and calls == ["step1"]


async def test_graph_errors_stop_dependents_propagate_and_allow_recovery():
    """Graphs handle errors by: stopping dependent nodes, propagating errors,
    allowing error recovery."""

    async def broken(data: Any) -> Any:
        raise ValueError("step1 failed")

    with pytest.raises(legato.GraphError) as caught:
        await beluga_graph(runnable1=broken).invoke({})
    assert caught.value.failed == "step1" and caught.value.skipped == ("step2", "step3")
    assert calls == []  # dependents stopped

    recovered = beluga_graph(runnable1=broken, on_error=lambda err, node, data: {"fallback": 1})
    assert await recovered.invoke({}) == {"step2": {"fallback": 1, "step2": True},
                                          "step3": {"fallback": 1, "step3": True}}
