"""Values on a page: a one-line preview, and the whole value (capped) to expand."""

from __future__ import annotations

import reprlib
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["Shown", "show"]

_PREVIEW = reprlib.Repr()
_PREVIEW.maxstring = _PREVIEW.maxother = 100
_PREVIEW.maxlist = _PREVIEW.maxtuple = _PREVIEW.maxdict = _PREVIEW.maxset = 6
_PREVIEW.maxlevel = 3
FULL_LIMIT = 100_000  # characters of a value's full form a page carries


@dataclass(frozen=True, slots=True)
class Shown:
    """A value as a page shows it: ``preview`` on one line, ``full`` when expanded.

    ``expandable`` is false when the preview already says everything.
    """

    preview: str
    full: str

    @property
    def expandable(self) -> bool:
        """Whether the full form says more than the preview (more lines or characters)."""
        return "\n" in self.full or len(self.full) > len(self.preview)


def show(value: Any, limit: int = FULL_LIMIT) -> Shown:
    """A value's preview and its full form: indented JSON (``repr`` where JSON can't hold it).

    >>> show({"a": 1}).preview
    "{'a': 1}"
    >>> show("x" * 500).expandable
    True
    >>> show(42).expandable
    False
    """
    try:
        full = orjson.dumps(value, default=repr,
                            option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        full = repr(value)
    if len(full) > limit:
        full = f"{full[:limit]}\n… ({len(full) - limit:,} more characters not shown)"
    return Shown(_PREVIEW.repr(value), full)
