"""A worker process that exports its spans as JSON lines, for the OpenTelemetry crash test.

Usage: otel_child.py DB SPANS_FILE — runs the crash workflows (``crash_workflows``)
with ``legato.otel`` on, writing each span to SPANS_FILE when it ends, until killed.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

sys.path.insert(0, str(Path(__file__).parent))

import crash_workflows  # noqa: F401  (registers the workflows this worker runs)
import legato
import legato.otel


def span_json(span: ReadableSpan) -> dict[str, Any]:
    """A finished span as the tests compare them (ids in hex)."""
    context, parent = span.get_span_context(), span.parent
    assert context is not None
    return {
        "name": span.name,
        "trace_id": f"{context.trace_id:032x}",
        "span_id": f"{context.span_id:016x}",
        "parent_id": None if parent is None else f"{parent.span_id:016x}",
        "attributes": dict(span.attributes or {}),
        "status": span.status.status_code.name,
    }


class JsonLinesExporter(SpanExporter):
    """Appends each span to a file as one JSON line, at once (a SIGKILL loses none)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with open(self.path, "a") as out:
            for span in spans:
                out.write(json.dumps(span_json(span)) + "\n")
        return SpanExportResult.SUCCESS


async def main(db: str, spans: str) -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesExporter(spans)))
    legato.otel.instrument(tracer_provider=provider)
    async with legato.Runtime(db, lease=0.5):
        print("serving", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:3]))
