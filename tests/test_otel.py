"""OpenTelemetry: one trace per workflow across a crash and another process; metrics."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import crash_workflows
import legato
import legato.otel
from crash_workflows import ran
from legato.testing import History, replay
from otel_child import span_json

TESTS = Path(__file__).parent


class Telemetry:
    """This process's spans and metrics, in memory."""

    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.metrics = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.metrics])

    def finished(self) -> list[dict[str, Any]]:
        return [span_json(s) for s in self.spans.get_finished_spans()]

    def points(self, name: str) -> dict[frozenset[tuple[str, Any]], Any]:
        """The data points of metric ``name``, by their attributes (sums, or histogram counts)."""
        data = self.metrics.get_metrics_data()
        assert data is not None
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        return {frozenset((p.attributes or {}).items()):
                                getattr(p, "value", None) if hasattr(p, "value") else p.count
                                for p in metric.data.data_points}
        return {}


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    t = Telemetry()
    legato.otel.instrument(t.tracer_provider, t.meter_provider)
    try:
        yield t
    finally:
        legato.otel.uninstrument()


async def test_a_crashed_workflow_recovered_elsewhere_is_one_trace_with_each_step_once(
        sqlite_db, log, child, telemetry, tmp_path):
    caller_tracer = telemetry.tracer_provider.get_tracer("test")
    with caller_tracer.start_as_current_span("caller"):
        async with legato.Runtime(sqlite_db, worker=False) as client:
            await client.start(crash_workflows.ten_steps, id="traced-1")
    spans_file = tmp_path / "worker-spans.jsonl"
    worker = child(sqlite_db, str(spans_file), script=TESTS / "otel_child.py",
                   env={"LEGATO_TEST_HANG_AFTER": "4"})
    worker.wait_for("step-5")  # steps 1-4 are checkpointed (and their spans ended)
    worker.kill()

    async with legato.Runtime(sqlite_db) as rt:  # takes over once the worker's lease lapses
        assert await rt.handle("traced-1").result(timeout=10) == [i * i for i in range(1, 11)]

    assert ran(log)["step-5"] == 2  # in flight at the kill: ran again here
    crashed = [json.loads(line) for line in spans_file.read_text().splitlines()]
    here = telemetry.finished()
    spans = crashed + here
    (caller,) = [s for s in here if s["name"] == "caller"]
    assert {s["trace_id"] for s in spans} == {caller["trace_id"]}  # one trace
    (start,) = [s for s in spans if s["name"] == "start ten_steps"]
    assert start["parent_id"] == caller["span_id"]
    assert start["attributes"]["legato.workflow.created"] is True
    # the killed attempt's span never ended; the recovering attempt hangs under the start
    (attempt,) = [s for s in spans if s["name"] == "workflow ten_steps"]
    assert attempt in here and attempt["parent_id"] == start["span_id"]
    assert attempt["attributes"]["legato.workflow.id"] == "traced-1"
    assert attempt["attributes"]["legato.workflow.outcome"] == "succeeded"
    assert attempt["attributes"]["legato.workflow.replayed_records"] == 4
    steps = [s for s in spans if s["name"] == "step numbered"]
    positions = Counter(s["attributes"]["legato.step.position"] for s in steps)
    assert positions == Counter(str(i) for i in range(1, 11))  # each step once
    assert {s["attributes"]["legato.step.position"] for s in crashed
            if s["name"] == "step numbered"} == {"1", "2", "3", "4"}
    for step in steps:
        assert step["attributes"]["legato.step.outcome"] == "ok"
        assert step["attributes"]["legato.step.attempt"] == 1
        if step in here:  # replayed steps 1-4 made no span here
            assert step["parent_id"] == attempt["span_id"]
    # the crashed worker's steps hang under its attempt, which it never got to export
    assert len({s["parent_id"] for s in crashed}) == 1


@legato.step(retry=legato.Retry(attempts=3, initial=0))
async def flaky(key: str) -> str:
    _tries[key] += 1
    if _tries[key] == 1:
        raise ConnectionError(f"{key}: try again")
    return key


_tries: Counter[str] = Counter()


class Refused(Exception):
    pass


@legato.step
async def refuse(amount: int) -> None:
    raise Refused(f"{amount} refused")


@legato.step
async def noop(i: int) -> int:
    return i


@legato.workflow(name="otel.part")
async def part(i: int) -> int:
    return await noop(i)


@legato.workflow(name="otel.order")
async def order(n: int) -> list[int]:
    await flaky(f"order-{n}")
    return [await part(i) for i in range(n)]


@legato.workflow(name="otel.doomed")
async def doomed(amount: int) -> None:
    await noop(amount)
    await refuse(amount)


async def test_metrics_count_a_known_workload(db, telemetry):
    _tries.clear()
    async with legato.Runtime(db) as rt:
        for n in (1, 2):
            await rt.run(order, n, id=f"order-{n}")
        await rt.start(order, 1, id="order-1")  # an existing id: not started again
        with pytest.raises(Refused):
            await rt.run(doomed, 900, id="doomed-1")

    started = telemetry.points("legato.workflows.started")
    assert started == {frozenset({("legato.workflow.name", "otel.order")}): 2,
                       frozenset({("legato.workflow.name", "otel.part")}): 3,
                       frozenset({("legato.workflow.name", "otel.doomed")}): 1}
    finished = telemetry.points("legato.workflows.finished")
    assert finished == {
        frozenset({("legato.workflow.name", "otel.order"),
                   ("legato.workflow.status", "succeeded")}): 2,
        frozenset({("legato.workflow.name", "otel.part"),
                   ("legato.workflow.status", "succeeded")}): 3,
        frozenset({("legato.workflow.name", "otel.doomed"),
                   ("legato.workflow.status", "failed")}): 1}
    assert telemetry.points("legato.step.retries") == {
        frozenset({("legato.step.name", "flaky")}): 2}
    durations = telemetry.points("legato.step.duration")  # histogram counts
    assert durations == {
        frozenset({("legato.step.name", "flaky"), ("legato.step.outcome", "error")}): 2,
        frozenset({("legato.step.name", "flaky"), ("legato.step.outcome", "ok")}): 2,
        frozenset({("legato.step.name", "noop"), ("legato.step.outcome", "ok")}): 4,
        frozenset({("legato.step.name", "refuse"), ("legato.step.outcome", "error")}): 1}

    spans = telemetry.finished()
    (failed,) = [s for s in spans if s["name"] == "workflow otel.doomed"]
    assert failed["status"] == "ERROR"
    assert failed["attributes"]["legato.workflow.outcome"] == "failed"
    (refused,) = [s for s in spans if s["name"] == "step refuse"]
    assert refused["status"] == "ERROR" and refused["parent_id"] == failed["span_id"]
    exception = next(e for e in telemetry.spans.get_finished_spans()
                     if e.name == "step refuse").events[0]
    assert exception.name == "exception"
    assert (exception.attributes or {})["exception.type"].endswith("Refused")
    # a child workflow is in its parent's trace, under the parent's attempt
    (parent,) = [s for s in spans if s["name"] == "workflow otel.order"
                 and s["attributes"]["legato.workflow.id"] == "order-2"]
    children = [s for s in spans if s["name"] == "start otel.part"
                and s["attributes"].get("legato.workflow.parent_id") == "order-2"]
    assert len(children) == 2
    assert {c["parent_id"] for c in children} == {parent["span_id"]}
    assert {c["trace_id"] for c in children} == {parent["trace_id"]}


async def test_the_stored_trace_context_is_invisible_to_the_workflow_and_its_history(
        sqlite_db, telemetry):
    async with legato.Runtime(sqlite_db) as rt:
        assert await rt.run(order, 1, id="order-1") == [0]
        info = await rt.get("order-1")
        history = await History.from_runtime(rt, "order-1")
    assert (info.args, info.kwargs) == ((1,), {})
    assert set(history.input) == {"args", "kwargs"}
    legato.otel.uninstrument()
    assert (await replay(order, history)).ok


async def test_nothing_is_observed_unless_instrumented(sqlite_db, tmp_path: Path):
    t = Telemetry()
    legato.otel.instrument(t.tracer_provider, t.meter_provider)
    legato.otel.uninstrument()
    assert not legato.otel.is_instrumented()
    async with legato.Runtime(sqlite_db) as rt:
        assert await rt.run(part, 7, id="quiet-1") == 7
        record = await rt.store.get("quiet-1")
    assert record is not None and b"trace" not in record.input
    assert t.spans.get_finished_spans() == ()
