"""Where ``rt.fork`` cuts a workflow's history: the records it reuses."""

from __future__ import annotations

from collections.abc import Sequence

from ...store import StepRecord

__all__ = ["fork_point"]


def fork_point(history: Sequence[StepRecord], at: str | int) -> int:
    """The top-level index before which a fork reuses records (``at`` is a position or a step).

    >>> fork_point(records, "4"), fork_point(records, "charge")
    (4, 3)
    """
    if isinstance(at, int) and not isinstance(at, bool):
        at = str(at)
    if not isinstance(at, str) or not at:
        raise ValueError(f"at= takes a top-level position (4 or '4') or a step's name, "
                         f"not {at!r}")
    if at.isdigit():
        if int(at) < 1:
            raise ValueError(f"at={at!r}: positions start at 1")
        return int(at)
    if "." in at and all(part.isdigit() for part in at.split(".")):
        raise ValueError(
            f"at={at!r} is inside a branch; fork at a top-level position (its first part, "
            f"at={at.split('.')[0]!r}) so the whole branch runs again")
    steps = sorted((int(r.position), r.name) for r in history
                   if r.kind == "step" and "." not in r.position)
    for index, name in steps:
        if name == at:
            return index
    names = ", ".join(sorted({name for _, name in steps})) or "none"
    raise ValueError(f"at={at!r} names no step the workflow called at the top level "
                     f"(its steps: {names}); pass a position instead")
