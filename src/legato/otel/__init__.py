"""OpenTelemetry traces and metrics for legato workflows: ``legato.otel.instrument()``.

Example::

    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
    import legato.otel

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)
    legato.otel.instrument()          # the global tracer and meter providers

    with tracer.start_as_current_span("handle request"):
        await rt.start(onboard, "ana")   # the workflow's trace hangs under this span

Call it in every process that starts or runs workflows (clients and
workers). Nothing is observed until it is called, and nothing costs anything
then: the engine checks one module global per workflow attempt and per step.

Spans (one trace per workflow, across replays, crashes and workers):

- ``start NAME`` (PRODUCER), where the workflow is created (``rt.start``, or
  a parent's child call): a child of the caller's current span. Its W3C
  trace context is stored with the workflow (under ``"trace"`` in the
  input envelope).
- ``workflow NAME`` (CONSUMER), one per attempt: a worker running the
  workflow from its history until it ends, is unloaded to wait, or is left
  to another worker. Its parent is the stored context, so every attempt on
  every worker joins the same trace. Attributes ``legato.workflow.id``,
  ``legato.workflow.name``, ``legato.workflow.replayed_records`` and
  ``legato.workflow.outcome`` (``succeeded``, ``failed``, ``cancelled``,
  ``waiting``, ``left``). A failed run records its exception and status ERROR.
- ``step NAME``, one per step attempt whose body really runs, under its
  attempt's span; it is the current span inside the step (instrumented HTTP
  clients nest under it). Attributes ``legato.workflow.id``,
  ``legato.step.position``, ``legato.step.name``, ``legato.step.attempt``
  (1, 2, ... under a retry policy) and ``legato.step.outcome`` (``ok``,
  ``error``, ``cancelled``). Replayed steps make no span: a recovered
  workflow's trace shows each step once (plus any attempt that a crash
  interrupted and a later attempt ran again).

A worker killed mid-attempt never ends that attempt's span (nor the span of
the step it was in), so they are not exported; the next attempt's span, on
the worker that takes it over, is in the same trace.

Metrics (meter ``legato``):

- ``legato.workflows.started`` counter, by ``legato.workflow.name``: workflows
  created (an existing id started again is not counted);
- ``legato.workflows.finished`` counter, by name and ``legato.workflow.status``;
- ``legato.workflow.attempts`` counter, by name and ``legato.workflow.outcome``;
- ``legato.step.duration`` histogram (seconds), by ``legato.step.name`` and
  ``legato.step.outcome``;
- ``legato.step.retries`` counter, by step name: attempts after the first.

Needs the ``otel`` extra: ``pip install 'legato[otel]'``.
"""

from __future__ import annotations

try:
    from opentelemetry import metrics, trace
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "legato.otel needs OpenTelemetry: pip install 'legato[otel]' "
        "(opentelemetry-api and opentelemetry-sdk)") from exc

from ..durable.engine import observe
from ._observer import OtelObserver

__all__ = ["instrument", "is_instrumented", "uninstrument"]

_SCOPE = "legato"


def instrument(tracer_provider: trace.TracerProvider | None = None,
               meter_provider: metrics.MeterProvider | None = None) -> None:
    """Send spans and metrics of every workflow and step in this process to OpenTelemetry.

    Example::

        legato.otel.instrument()                       # the global providers
        legato.otel.instrument(tracer_provider=provider, meter_provider=meters)

    Args:
        tracer_provider: where spans go (default: the global one, as
            ``opentelemetry.trace.set_tracer_provider`` set it).
        meter_provider: where metrics go (default: the global one).

    Calling it again replaces the providers; :func:`uninstrument` turns it off.
    """
    from .. import __version__

    tracer = trace.get_tracer(_SCOPE, __version__, tracer_provider)
    meter = metrics.get_meter(_SCOPE, __version__, meter_provider)
    observe.set_observer(OtelObserver(tracer, meter))


def uninstrument() -> None:
    """Stop observing: workflows and steps make no spans or metrics from now on.

    >>> legato.otel.uninstrument()
    """
    observe.set_observer(None)


def is_instrumented() -> bool:
    """Whether :func:`instrument` is in force (another observer doesn't count).

    >>> legato.otel.is_instrumented()
    False
    """
    return isinstance(observe.OBSERVER, OtelObserver)
