"""A workflow's history as a document: what ``legato export`` writes and :func:`replay` reads.

The document is JSON::

    {"format": "legato-history/1", "id": "order-42", "name": "process_order",
     "status": "succeeded", "input": {"args": [...], "kwargs": {...}},
     "result": ..., "error": null,
     "records": [{"position": "1", "kind": "step", "name": "fetch", "ok": true,
                  "data": ..., "at": "2030-01-07T09:00:00+00:00"}, ...]}

``input``, ``result`` and each record's ``data`` are the values as the
default JSON serializer stores them (extended types as ``{"$legato": ...}``
nodes); data another serializer wrote (pickle) is kept as ``"data_b64"``.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from .. import HistoryRecord, JsonSerializer, Runtime, Serializer

__all__ = ["FORMAT", "History", "load_history"]

FORMAT = "legato-history/1"


@dataclass(frozen=True, slots=True)
class History:
    """One workflow's recorded run: its name, input, outcome and checkpoints.

    Make one from a store (:meth:`from_runtime`), or load an exported file
    (:func:`load_history`); :meth:`to_json` gives the document back.

    Example::

        async with legato.Runtime("legato.db", worker=False) as rt:
            history = await History.from_runtime(rt, "order-42")
        Path("tests/golden/order.json").write_text(history.dumps())
    """

    id: str
    name: str
    status: str
    input: Mapping[str, Any]  # {"args": [...], "kwargs": {...}} in stored JSON form
    records: tuple[HistoryRecord, ...]
    result: Any = None  # stored JSON form
    error: str | None = None  # "Type: message"

    @property
    def finished(self) -> bool:
        """Whether the recorded run ended by itself (succeeded or failed)."""
        return self.status in ("succeeded", "failed")

    @classmethod
    async def from_runtime(cls, rt: Runtime, workflow_id: str) -> History:
        """The history of ``workflow_id`` in ``rt``'s store (``rt.get`` and ``rt.history``)."""
        info = await rt.get(workflow_id)
        records = await rt.history(workflow_id)
        inputs = {"args": list(info.args), "kwargs": dict(info.kwargs)}
        return cls(info.id, info.name, str(info.status), _json(rt.serializer, inputs),
                   tuple(records), _json(rt.serializer, info.output), info.error)

    def args(self, serializer: Serializer | None = None) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The recorded arguments as values (their classes must be imported)."""
        loaded = (serializer or JsonSerializer()).loads(orjson.dumps(dict(self.input)))
        return tuple(loaded.get("args") or ()), dict(loaded.get("kwargs") or {})

    def to_json(self) -> dict[str, Any]:
        """The JSON-ready document (see the module docstring)."""
        return {
            "format": FORMAT, "id": self.id, "name": self.name, "status": self.status,
            "input": dict(self.input), "result": self.result, "error": self.error,
            "records": [_record_json(r) for r in self.records],
        }

    def dumps(self) -> str:
        """The document as indented JSON text, ending in a newline."""
        return orjson.dumps(self.to_json(), option=orjson.OPT_INDENT_2).decode() + "\n"

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> History:
        """A history from a document :meth:`to_json` made (or ``legato export`` wrote)."""
        if doc.get("format") != FORMAT:
            raise ValueError(f"not a legato history document (format {doc.get('format')!r}, "
                             f"expected {FORMAT!r}); make one with `legato export ID`")
        return cls(str(doc["id"]), str(doc["name"]), str(doc["status"]), dict(doc["input"]),
                   tuple(_record(r) for r in doc["records"]), doc.get("result"),
                   doc.get("error"))


def load_history(source: History | Mapping[str, Any] | str | os.PathLike[str]) -> History:
    """A :class:`History` from itself, a document, or the path of an exported file."""
    if isinstance(source, History):
        return source
    if isinstance(source, Mapping):
        return History.from_json(source)
    return History.from_json(orjson.loads(Path(source).read_bytes()))


def _json(serializer: Serializer, value: Any) -> Any:
    return orjson.loads(serializer.dumps(value, label="a history value"))


def _record_json(r: HistoryRecord) -> dict[str, Any]:
    doc: dict[str, Any] = {"position": r.position, "kind": r.kind, "name": r.name, "ok": r.ok}
    if r.data is not None:
        try:
            doc["data"] = orjson.loads(r.data)
        except orjson.JSONDecodeError:
            doc["data_b64"] = base64.b64encode(r.data).decode()
    doc["at"] = r.at.isoformat()
    return doc


def _record(doc: Mapping[str, Any]) -> HistoryRecord:
    if "data_b64" in doc:
        data: bytes | None = base64.b64decode(doc["data_b64"])
    else:
        data = orjson.dumps(doc["data"]) if "data" in doc else None
    return HistoryRecord(str(doc["position"]), str(doc["kind"]), str(doc["name"]),
                         bool(doc["ok"]), data, datetime.fromisoformat(str(doc["at"])))
