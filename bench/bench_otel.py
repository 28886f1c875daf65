"""What observing costs: sequential durable steps with the observer off, and on.

One workflow of N sequential trivial steps (bench_durable's (a)), measured
in the same run, each on a fresh SQLite file, the variants interleaved (in
a rotating order) and repeated; the median of each is kept, as these
machines are noisy:

- off: no observer (``legato.otel`` never instrumented): the engine reads
  one module global per attempt and per step, nothing else (that check is
  timed alone too: far below the noise of the step timings);
- a do-nothing observer: the engine's hook calls alone;
- ``legato.otel.instrument()`` with the OpenTelemetry SDK (a TracerProvider
  with a SimpleSpanProcessor feeding a discarding exporter, a MeterProvider
  with an in-memory reader): real spans and metrics.

Run with ``make bench`` (or ``python bench/bench_otel.py``).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import timeit
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bench_durable import legato_sequential_us, raw_sqlite_commit_us

from legato.durable.engine import observe


class _Nothing:
    trace: Mapping[str, str] | None = None

    def end(self, *args: Any) -> None:
        pass


class NullObserver:
    """Observes nothing: what the engine's hook calls cost by themselves."""

    _nothing = _Nothing()

    def creating(self, *args: Any) -> _Nothing:
        return self._nothing

    def attempt(self, *args: Any) -> _Nothing:
        return self._nothing

    def step(self, *args: Any) -> _Nothing:
        return self._nothing


def _otel() -> Callable[[], None] | None:
    try:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
        from opentelemetry.sdk.trace.export import (
            SimpleSpanProcessor,
            SpanExporter,
            SpanExportResult,
        )

        import legato.otel
    except ImportError:  # the otel extra is not installed
        return None

    class Discard(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    def on() -> None:
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(Discard()))
        meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
        legato.otel.instrument(tracer_provider, meter_provider)

    return on


def run(steps: int = 2000, rounds: int = 7) -> list[dict[str, Any]]:
    """Time the variants; one row per variant, each beside its baseline."""
    otel_on = _otel()
    variants: dict[str, Callable[[], None]] = {
        "off": lambda: observe.set_observer(None),
        "null": lambda: observe.set_observer(NullObserver()),
    }
    if otel_on is not None:
        variants["otel"] = otel_on
    timings: dict[str, list[float]] = {name: [] for name in variants}
    raws: list[float] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for r in range(rounds):
                raws.append(raw_sqlite_commit_us(Path(tmp) / f"raw{r}.db", steps))
                names = list(variants)
                for name in names[r % len(names):] + names[:r % len(names)]:  # rotated
                    variants[name]()
                    timings[name].append(asyncio.run(
                        legato_sequential_us(Path(tmp) / f"{name}{r}.db", steps)))
    finally:
        observe.set_observer(None)
    raw = statistics.median(raws)
    off = statistics.median(timings["off"])
    rows = [
        {"bench": f"(o) sequential step x {steps}, observer off", "value": off,
         "unit": "µs/step", "baseline": raw, "baseline_name": "raw sqlite3 WAL commit",
         "ratio": off / raw, "target": "ratio ≤ 5 (as (a))", "ok": off / raw <= 5},
        _on_row("(o) same, a do-nothing observer", statistics.median(timings["null"]), off),
    ]
    check = _check_ns()
    rows.append({"bench": "(o) the engine's check when off, per step", "value": check,
                 "unit": "ns/step", "baseline": off * 1e3, "baseline_name": "a step, off",
                 "ratio": check / (off * 1e3), "target": "ratio ≤ 0.001", "ok":
                 check / (off * 1e3) <= 0.001})
    if "otel" in timings:
        rows.append(_on_row("(o) same, legato.otel.instrument() (SDK, spans discarded)",
                            statistics.median(timings["otel"]), off))
    return rows


def _check_ns(n: int = 1_000_000) -> float:
    """ns per ``observe.OBSERVER`` check, as a step makes it (a module global, read once)."""
    observe.set_observer(None)
    code = "observer = observe.OBSERVER\nobserved = None if observer is None else 1"
    return min(timeit.repeat(code, globals={"observe": observe}, number=n, repeat=5)) / n * 1e9


def _on_row(bench: str, value: float, off: float) -> dict[str, Any]:
    return {"bench": bench, "value": value, "unit": "µs/step", "baseline": off,
            "baseline_name": "observer off", "ratio": value / off,
            "target": "(information)", "ok": True}


if __name__ == "__main__":
    from table import print_table

    print_table("observing (legato.otel) vs off, sequential durable steps (SQLite)", run())
