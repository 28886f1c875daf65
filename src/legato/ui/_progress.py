"""The progress convention, shared with the CLI: see :mod:`legato._progress`."""

from __future__ import annotations

from .._progress import EVENT, Progress, read_progress

__all__ = ["EVENT", "Progress", "read_progress"]
