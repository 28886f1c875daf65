"""The OpenTelemetry observer: spans and metrics for workflow attempts and steps."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from contextvars import Token
from typing import final

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

__all__ = ["OtelObserver"]

_W3C = TraceContextTextMapPropagator()  # stored with the workflow: W3C, whatever the global

WORKFLOW_ID = "legato.workflow.id"
WORKFLOW_NAME = "legato.workflow.name"
STEP_POSITION = "legato.step.position"
STEP_NAME = "legato.step.name"
STEP_ATTEMPT = "legato.step.attempt"

_FINISHED = ("succeeded", "failed", "cancelled")


@final
class OtelObserver:
    """Turns the engine's observations into OpenTelemetry spans and metrics."""

    def __init__(self, tracer: trace.Tracer, meter: metrics.Meter) -> None:
        self.tracer = tracer
        self.started = meter.create_counter(
            "legato.workflows.started", unit="{workflow}",
            description="Workflows created (rt.start and child workflows; an existing id "
                        "is not counted again)")
        self.finished = meter.create_counter(
            "legato.workflows.finished", unit="{workflow}",
            description="Workflows that ended, by legato.workflow.status")
        self.attempts = meter.create_counter(
            "legato.workflow.attempts", unit="{attempt}",
            description="Workflow run attempts by legato.workflow.outcome (waiting: unloaded; "
                        "left: left to another attempt)")
        self.step_duration = meter.create_histogram(
            "legato.step.duration", unit="s",
            description="Duration of step attempts whose body ran (replayed steps excluded)")
        self.retries = meter.create_counter(
            "legato.step.retries", unit="{attempt}",
            description="Step attempts after the first (a retry policy's retries)")

    def creating(self, workflow_id: str, name: str, parent_id: str | None) -> _Creation:
        attributes: dict[str, str] = {WORKFLOW_ID: workflow_id, WORKFLOW_NAME: name}
        if parent_id is not None:
            attributes["legato.workflow.parent_id"] = parent_id
        # a child of the caller's current span (for a child workflow: the parent's attempt)
        span = self.tracer.start_span(f"start {name}", kind=SpanKind.PRODUCER,
                                      attributes=attributes)
        carrier: dict[str, str] = {}
        _W3C.inject(carrier, context=trace.set_span_in_context(span))
        return _Creation(self, span, carrier, name)

    def attempt(self, workflow_id: str, name: str, trace_context: object, replaying: int
                ) -> _Attempt:
        # the stored context, never the worker's current one: every attempt, on any
        # worker, joins the trace of the workflow's start
        parent = (_W3C.extract(trace_context, Context())
                  if isinstance(trace_context, Mapping) else Context())
        span = self.tracer.start_span(
            f"workflow {name}", context=parent, kind=SpanKind.CONSUMER,
            attributes={WORKFLOW_ID: workflow_id, WORKFLOW_NAME: name,
                        "legato.workflow.replayed_records": replaying})
        token = otel_context.attach(trace.set_span_in_context(span))
        return _Attempt(self, span, token, name)

    def step(self, workflow_id: str, position: str, name: str, attempt: int) -> _Step:
        span = self.tracer.start_span(  # a child of the attempt's span (the current one)
            f"step {name}", attributes={WORKFLOW_ID: workflow_id, STEP_POSITION: position,
                                        STEP_NAME: name, STEP_ATTEMPT: attempt})
        if attempt > 1:
            self.retries.add(1, {STEP_NAME: name})
        token = otel_context.attach(trace.set_span_in_context(span))
        return _Step(self, span, token, name)


@final
class _Creation:
    __slots__ = ("_name", "_observer", "_span", "trace")

    def __init__(self, observer: OtelObserver, span: Span, carrier: dict[str, str],
                 name: str) -> None:
        self._observer, self._span, self.trace, self._name = observer, span, carrier, name

    def end(self, created: bool) -> None:
        self._span.set_attribute("legato.workflow.created", created)
        self._span.end()
        if created:
            self._observer.started.add(1, {WORKFLOW_NAME: self._name})


@final
class _Attempt:
    __slots__ = ("_name", "_observer", "_span", "_token")

    def __init__(self, observer: OtelObserver, span: Span, token: Token[Context],
                 name: str) -> None:
        self._observer, self._span, self._token, self._name = observer, span, token, name

    def end(self, status: str | None, error: BaseException | None) -> None:
        otel_context.detach(self._token)
        outcome = status or "left"
        self._span.set_attribute("legato.workflow.outcome", outcome)
        if status == "failed" or (status is None and error is not None
                                  and not isinstance(error, asyncio.CancelledError)):
            _record_error(self._span, error)  # failed, or an error escaped (a store outage)
        self._span.end()
        self._observer.attempts.add(1, {WORKFLOW_NAME: self._name,
                                        "legato.workflow.outcome": outcome})
        if status in _FINISHED:
            self._observer.finished.add(1, {WORKFLOW_NAME: self._name,
                                            "legato.workflow.status": outcome})


@final
class _Step:
    __slots__ = ("_name", "_observer", "_span", "_start", "_token")

    def __init__(self, observer: OtelObserver, span: Span, token: Token[Context],
                 name: str) -> None:
        self._observer, self._span, self._token, self._name = observer, span, token, name
        self._start = time.perf_counter()

    def end(self, error: BaseException | None) -> None:
        elapsed = time.perf_counter() - self._start
        otel_context.detach(self._token)
        if error is None:
            outcome = "ok"
        elif isinstance(error, asyncio.CancelledError):
            outcome = "cancelled"
        else:
            outcome = "error"
            _record_error(self._span, error)
        self._span.set_attribute("legato.step.outcome", outcome)
        self._span.end()
        self._observer.step_duration.record(elapsed, {STEP_NAME: self._name,
                                                      "legato.step.outcome": outcome})


def _record_error(span: Span, error: BaseException | None) -> None:
    if error is None:
        span.set_status(Status(StatusCode.ERROR))
        return
    span.record_exception(error)
    span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))

