"""Testing helpers for code that uses legato.

- :func:`explore` crashes a workflow at every commit point (and shuffles the
  completion order of concurrent steps), recovers it, and checks the result,
  the steps run twice, nondeterminism and hangs.
- :func:`replay` runs today's code against a recorded history without running
  any step, and reports the first position where the code diverges.

The pytest plugin (:mod:`legato.testing.plugin`) is registered as an entry
point, so installing legato gives every test session its fixtures:
``legato_store_url`` and ``legato_runtime``. Importing this package imports
neither pytest nor the plugin.
"""

from __future__ import annotations

from ._explore import explore as explore
from ._explore_report import CaseResult as CaseResult
from ._explore_report import ExploreFailed as ExploreFailed
from ._explore_report import ExploreReport as ExploreReport
from ._explore_report import Outcome as Outcome
from ._history import History as History
from ._history import load_history as load_history
from ._replay import replay as replay
from ._replay_report import Divergence as Divergence
from ._replay_report import ReplayFailed as ReplayFailed
from ._replay_report import ReplayReport as ReplayReport
from ._tap import CommitPoint as CommitPoint

__all__ = [
    "CaseResult",
    "CommitPoint",
    "Divergence",
    "ExploreFailed",
    "ExploreReport",
    "History",
    "Outcome",
    "ReplayFailed",
    "ReplayReport",
    "explore",
    "load_history",
    "replay",
]
