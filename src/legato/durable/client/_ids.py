"""Workflow ids: checked at the call, so a bad one never reaches a store or a log."""

from __future__ import annotations

__all__ = ["check_id"]

_MAX_ID = 1000  # characters; ids are keys, shown in logs and terminals


def check_id(workflow_id: object) -> None:
    """A workflow id must be a non-empty str the stores can keep (UTF-8, bounded)."""
    if not isinstance(workflow_id, str) or not workflow_id:
        raise TypeError(f"a workflow id must be a non-empty str, not {_shown(workflow_id)}")
    if len(workflow_id) > _MAX_ID:
        raise ValueError(f"a workflow id is at most {_MAX_ID} characters, and this one has "
                         f"{len(workflow_id)}: {_shown(workflow_id)}")
    try:
        workflow_id.encode()
    except UnicodeEncodeError:
        raise ValueError(f"a workflow id must be valid text (UTF-8), and "
                         f"{_shown(workflow_id)} holds a lone surrogate; decode the bytes it "
                         "came from with errors='replace' or pick another id") from None


def _shown(value: object) -> str:
    text = ascii(value)  # no surrogate can break the message itself
    return text if len(text) <= 80 else f"{text[:60]}...{text[-10:]} ({len(text)} chars)"
