"""``rt.start(..., debounce=(key, window))``: a burst of starts becomes one run.

Every start with the same workflow and key while a run for that key is still
``pending`` folds into that run: it takes the latest start's arguments, and
its start moves to ``window`` after the latest start (never later than
``max_wait`` after the first start, if given). When no start came for a
whole window, the run starts, with the last arguments. A start after that
begins the next run. DBOS's debouncer (``debounce_timeout`` is our
``max_wait``) and Inngest's ``debounce`` (``period``, ``timeout``) work the
same way.

Durable: the pending run is an ordinary row (``not_before`` is the end of
the window, in durable time), written in one store operation per start, and
a unique index keeps one pending run per workflow and key across every
process sharing the store.

The run's id is the first start's (its ``id=``, or a fresh one); a later
start folded into it returns a handle to that run, whatever its own ``id=``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, final

from ..._duration import Duration, to_seconds

if TYPE_CHECKING:
    from ...store import NewWorkflow, Store, WorkflowRecord

__all__ = ["DebounceSpec", "Debounced"]

DebounceSpec = tuple[str, Duration] | tuple[str, Duration, Duration]

_FORM = ("write debounce=(key, window) or debounce=(key, window, max_wait), e.g. "
         "debounce=('user-42', '5s') or debounce=('user-42', '5s', '1m')")


@final
@dataclass(frozen=True, slots=True)
class Debounced:
    """A checked ``debounce=`` option: the key, the window and the longest wait, in seconds."""

    key: str
    window: float
    max_wait: float | None

    @classmethod
    def parse(cls, debounce: object, *, delay: object, dedup_key: object) -> Debounced:
        """Check ``debounce=`` (and the options it can't go with) before anything is stored.

        >>> Debounced.parse(("user-42", "5s"), delay=None, dedup_key=None)
        Debounced(key='user-42', window=5.0, max_wait=None)

        Raises:
            ValueError: not a ``(key, window[, max_wait])`` tuple, an empty
                key, a window that is not a positive duration, or
                ``delay=``/``dedup_key=`` given too.
            TypeError: the key is not a str.
        """
        if not isinstance(debounce, tuple) or len(debounce) not in (2, 3):
            raise ValueError(f"debounce={debounce!r} is not a (key, window) tuple; {_FORM}")
        key, window = debounce[0], debounce[1]
        if not isinstance(key, str):
            raise TypeError(f"the debounce key must be a str, not {key!r}; {_FORM}")
        if not key:
            raise ValueError(f"the debounce key can't be empty; {_FORM}")
        seconds = _positive("window", window)
        max_wait = None if len(debounce) == 2 else _positive("max_wait", debounce[2])
        if delay is not None:
            raise ValueError("debounce= and delay= can't go together: the debounce window is "
                             "the delay (the run starts a window after the last start)")
        if dedup_key is not None:
            raise ValueError("debounce= and dedup_key= can't go together: the debounce key "
                             "already keeps one pending run per key")
        return cls(key, seconds, max_wait)

    async def start(self, store: Store, new: NewWorkflow, clock_now: float
                    ) -> WorkflowRecord | None:
        """Store ``new`` as this key's pending run, or fold it into the one there is.

        ``None`` if ``new`` became the key's run; else the run it went to
        (the key's pending run, or the run that already had ``new``'s id).
        """
        until = None if self.max_wait is None else clock_now + self.max_wait
        end = clock_now + self.window
        not_before = end if until is None else min(end, until)
        return await store.debounce(replace(new, not_before=not_before), self.key, until)


def _positive(label: str, value: object) -> float:
    try:
        seconds = to_seconds(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"the debounce {label} {value!r} is not a duration ({exc}); "
                         f"{_FORM}") from None
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ValueError(f"the debounce {label} must be a positive duration, not {value!r}; "
                         f"{_FORM}")
    return seconds
