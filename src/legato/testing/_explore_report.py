"""What :func:`legato.testing.explore` found: one result per crash point and order."""

from __future__ import annotations

import reprlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._errors import LegatoError
from ._tap import CommitPoint

__all__ = ["CaseResult", "ExploreFailed", "ExploreReport", "Outcome"]

_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 80
_SHORT.maxlevel = 3


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a run ended: its value, or its error's type and message (``None``: it hung)."""

    ok: bool
    value: Any = None
    error: str = ""  # "TypeName: message"
    nondeterministic: bool = False  # the error is a NonDeterminismError

    @classmethod
    def of(cls, value: Any = None, error: BaseException | None = None) -> Outcome:
        if error is None:
            return cls(True, value)
        from .._errors import NonDeterminismError

        return cls(False, error=f"{type(error).__name__}: {error}",
                   nondeterministic=isinstance(error, NonDeterminismError))

    def same(self, other: Outcome) -> bool:
        if self.ok != other.ok:
            return False
        if not self.ok:
            return self.error == other.error
        try:
            return bool(self.value == other.value)
        except Exception:
            return repr(self.value) == repr(other.value)

    def __str__(self) -> str:
        return _SHORT.repr(self.value) if self.ok else f"raised {self.error}"


@dataclass(frozen=True, slots=True)
class CaseResult:
    """One crash-and-recover run (or, for ``"first"``, the uncrashed run).

    ``crashed_after`` is the last commit that landed (``None``: none did);
    ``lost`` the write the crash stopped (``None``: the run ended before the
    crash point). ``runs`` counts, per step run more than once, how often it
    ran (keyed ``"2.1 fetch"``, children as ``"/4 3 fetch"``).
    """

    case: str
    crashed_after: CommitPoint | None
    lost: CommitPoint | None
    outcome: Outcome | None  # None: it hung
    runs: Mapping[str, int] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def where(self) -> str:
        """The crash point in words."""
        if self.lost is None:
            return "no crash (the run ended first)" if self.case != "first" else "first run"
        after = "before any commit" if self.crashed_after is None else (
            f"after {self.crashed_after}")
        return f"crash {after}; lost {self.lost}"


@dataclass(frozen=True, slots=True)
class ExploreReport:
    """Every case :func:`explore` ran; ``ok`` when none found a problem.

    ``str(report)`` lists the failures, each with the call that replays it.
    """

    workflow: str
    seed: int
    expected: Outcome | None
    commits: tuple[CommitPoint, ...]
    cases: tuple[CaseResult, ...]
    seconds: float
    concurrent: bool = False  # steps ran concurrently (orders were shuffled)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.cases)

    @property
    def failures(self) -> list[CaseResult]:
        return [c for c in self.cases if not c.ok]

    def replay_hint(self, case: str) -> str:
        return (f"await legato.testing.explore({self.workflow}, ..., seed={self.seed}, "
                f"only={case!r})")

    def __str__(self) -> str:
        head = (f"explore {self.workflow}: {len(self.cases)} runs over {len(self.commits)} "
                f"commit points, seed {self.seed}, {self.seconds:.2f} s: ")
        if self.ok:
            return head + f"ok (result {self.expected})"
        lines = [head + f"{len(self.failures)} failed (first run's result: {self.expected})"]
        for c in self.failures:
            lines.append(f"- {c.case}: {c.where()}")
            lines += [f"    {p}" for p in c.problems]
            lines.append(f"    replay it: {self.replay_hint(c.case)}")
        return "\n".join(lines)


class ExploreFailed(LegatoError, AssertionError):
    """A crash or a completion order changed a workflow's result, effects or history.

    ``report`` holds every case; the message lists the failing ones, each
    naming its crash point, the seed and the call that replays exactly it.
    """

    def __init__(self, report: ExploreReport) -> None:
        super().__init__(str(report))
        self.report = report
