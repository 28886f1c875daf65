"""What ``resume`` forgets: the recorded failure that ended a run, nothing else.

A workflow may catch a failed step and go on (a declined card charge,
handled); that record is part of its history and must replay as it was.
Only the failure that ended the run is forgotten, so its operation runs
again on resume. ``finish`` keeps where that failure was recorded (the
``failed_at`` column):

- a position: the record there is forgotten with everything recorded under
  it (a step's retry attempts and the waits between them), so the operation
  runs afresh, with its whole retry policy;
- ``""``: the workflow's own code raised; no record holds the error, so
  nothing is forgotten but the workflow's error;
- ``NULL``: not known (finished by a legato that did not say): inferred
  from the history, see :func:`infer_failed_at`.

A cancelled workflow forgets nothing: no failure ended it.
"""

from __future__ import annotations

from collections.abc import Iterable

from ._protocol import Infer

__all__ = ["forgotten", "stored_failed_at"]

_BODY = ""  # the workflow's own code: no record to forget


def stored_failed_at(status: str, failed_at: str | Infer | None) -> str | None:
    """The ``failed_at`` column's value for a run that ends with ``status``."""
    if status != "failed" or isinstance(failed_at, Infer):
        return None
    return _BODY if failed_at is None else failed_at


def forgotten(status: str, failed_at: str | None, records: Iterable[tuple[str, bool]]
              ) -> list[str]:
    """The positions ``resume`` deletes, given the stored ``failed_at`` and ``(position, ok)``s."""
    if status != "failed":
        return []
    records = list(records)
    at = infer_failed_at(records) if failed_at is None else failed_at
    if at == _BODY:
        return []
    below = at + "."
    return [p for p, ok in records if (p == at and not ok) or p.startswith(below)]


def infer_failed_at(records: list[tuple[str, bool]]) -> str:
    """The likely end of a run whose ``finish`` did not say: a failure at the frontier.

    The last record (in position order) and its ancestors are what the run
    did last; the outermost failed one among them is taken as the failure
    that ended it (a step's record, not the attempts under it). A failure
    followed by later records was handled: the run went on. Not exact: a
    workflow that handles its last step's failure and then raises, or one
    that records compensations after the failure, is misjudged; an engine
    that passes ``failed_at`` to ``finish`` never relies on this.
    """
    if not records:
        return _BODY
    ok = dict(records)
    last = max(ok, key=_order)
    parts = last.split(".")
    chain = [".".join(parts[:n]) for n in range(1, len(parts) + 1)]
    failed = [p for p in chain if p in ok and not ok[p]]
    return failed[0] if failed else _BODY


def _order(position: str) -> tuple[tuple[int, int, str], ...]:
    # Numeric per part ("10" after "9"); a part that is not a number sorts after them.
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in position.split("."))
