"""What :func:`legato.testing.replay` found: where today's code leaves a recorded history."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .._errors import LegatoError
from ._explore_report import Outcome

__all__ = ["Divergence", "ReplayFailed", "ReplayReport"]

_CALL = re.compile(r"^(\w+) '([^']*)'$")  # "step 'charge'"


@dataclass(frozen=True, slots=True)
class Divergence:
    """The first position where the code does something else than the history recorded.

    ``position`` is ``"end"`` when every record replays but the run ends
    another way. ``fix`` is the ``legato.patched(...)`` guard that lets old
    histories replay the old code while new runs take the new one.
    """

    position: str
    recorded: str
    now: str
    fix: str

    @classmethod
    def of(cls, position: str, recorded: str, now: str) -> Divergence:
        return cls(position, recorded, now, _fix(recorded, now))

    @classmethod
    def at_end(cls, recorded: str, now: str) -> Divergence:
        return cls("end", recorded, now, (
            "every recorded call replays, but the code now ends another way: guard the "
            "change in the code after the last call with legato.patched(\"<change-id>\")"))

    def __str__(self) -> str:
        where = "at the end" if self.position == "end" else f"at position {self.position}"
        return (f"diverges {where}: the history recorded {self.recorded}; the code now does "
                f"{self.now}.\n{self.fix}")


def _fix(recorded: str, now: str) -> str:
    new = _CALL.match(now)
    old = _CALL.match(recorded)
    call = f"await {new[2]}(...)" if new and new[1] == "step" else f"... # {now}"
    patch = f"add-{new[2]}" if new and new[2] else "my-change"
    guard_new = (f"if legato.patched(\"{patch}\"):\n        {call}")
    lines = ["Fix: guard the change so that old histories replay the old path:",
             f"    {guard_new}"]
    if old and old[2] and new and old[1] == new[1] and old[2] != new[2]:
        lines += [f"    else:                      # if {old[2]!r} was replaced",
                  f"        await {old[2]}(...)",
                  f"or, if {old[2]!r} was only renamed, keep its recorded name: "
                  f"@legato.step(name={old[2]!r})."]
    lines.append("(Then `legato.deprecate_patch(...)` once no old run is left; see README, "
                 "\"To change code while workflows are in flight\".)")
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class ReplayReport:
    """The outcome of replaying one history with today's code.

    ``ok`` unless the code diverges (``divergence``) or the replay hung.
    ``complete`` is false for a history of a run still in flight (or one the
    replay stopped in); ``next_call`` is then what the code does after the
    last record — consistent so far.
    """

    workflow: str
    history: str  # the recorded workflow's id
    recorded_name: str
    records: int
    outcome: Outcome | None
    complete: bool
    divergence: Divergence | None = None
    next_call: str | None = None
    hung: bool = False

    @property
    def ok(self) -> bool:
        return self.divergence is None and not self.hung

    def __str__(self) -> str:
        head = f"replay {self.history!r} ({self.records} records) with {self.workflow}: "
        if self.divergence is not None:
            return head + str(self.divergence)
        if self.hung:
            return head + "hung: the replay neither ended nor reached a new call"
        if not self.complete:
            return head + f"ok so far; the history ends before {self.next_call}"
        return head + f"ok (result {self.outcome})"


class ReplayFailed(LegatoError, AssertionError):
    """Today's code diverges from a recorded history; ``report`` says where and how to fix it."""

    def __init__(self, report: ReplayReport) -> None:
        super().__init__(str(report))
        self.report = report
