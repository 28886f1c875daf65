"""Workflows taken over from a worker that died: said in the log, and limited.

A claim that finds a ``running`` workflow whose lease lapsed takes it over
(see :class:`~legato.store.Claimed`): its worker stopped renewing, because
the process died, was killed, or hung. Each takeover is a WARNING naming
both workers, with structured fields for log pipelines::

    took over workflow 'order-7' (charge) from worker host:41:ab12 whose lease lapsed

A lease that lapsed under this very worker (its event loop stalled) is
taken back quietly: the stall itself is logged by the lease keeper.

The store counts takeovers in the row (``recoveries``, reset by resume and
continue-as-new). A workflow declared ``@workflow(max_recoveries=N)`` that
is taken over an (N+1)th time is not run again but ``failed`` with
:class:`~legato.RecoveryLimitExceeded` (DBOS's dead letter, whose default
limit is 100; ours is none). The worker applies the limit after the claim
rather than the store inside it: the store never builds errors (they are
encoded by the workflow's serializer), no column holds a copy of the code's
setting, and a deploy that changes the limit applies to runs in flight. It
costs one more write, for a poison workflow only.
"""

from __future__ import annotations

import logging
from typing import Any

from ..._errors import RecoveryLimitExceeded
from ..._serde import encode_error
from ...store import Claimed, owner_worker
from ..engine import Engine
from ..workflow import Workflow, lookup

__all__ = ["log_takeover", "sort_claimed", "stop_poisoned"]

log = logging.getLogger("legato.worker")


def log_takeover(record: Claimed) -> None:
    """Log ``record``'s takeover from a worker whose lease lapsed, if it was one."""
    if not record.taken_over or record.previous_owner is None:
        return
    previous = owner_worker(record.previous_owner)
    log.warning(
        "took over workflow %r (%s) from worker %s whose lease lapsed (the process died "
        "or hung); it resumes from its last checkpoint (recovery %d)",
        record.id, record.name, previous, record.recoveries,
        extra={"workflow_id": record.id, "workflow": record.name, "attempt": record.owner,
               "previous_worker": previous, "previous_attempt": record.previous_owner,
               "recoveries": record.recoveries})


async def stop_poisoned(engine: Engine, record: Claimed, limit: int) -> bool:
    """Fail ``record``, just claimed, with :class:`RecoveryLimitExceeded`; ``False``: lease lost."""
    error = RecoveryLimitExceeded(record.id, record.name, record.recoveries, limit)
    data = engine.serializer.dumps(encode_error(error), label="a workflow's error")
    done = await engine.store.finish(record.id, record.owner or "", "failed", None, data,
                                     failed_at=None)
    if done:
        log.error("workflow %r (%s) failed: %s", record.id, record.name, error,
                  extra={"workflow_id": record.id, "workflow": record.name,
                         "status": "failed", "recoveries": record.recoveries})
    return done


def sort_claimed(claimed: list[Claimed]
                 ) -> tuple[list[tuple[Workflow[..., Any], Claimed]], list[tuple[Claimed, int]]]:
    """``claimed`` split in runs to launch (with their code) and poisoned ones (with the limit).

    Logs each takeover on the way. A run whose code this process lacks is in neither.
    """
    runnable: list[tuple[Workflow[..., Any], Claimed]] = []
    poisoned: list[tuple[Claimed, int]] = []
    for record in claimed:
        log_takeover(record)
        wf = lookup(record.name)
        if wf is None:
            continue
        most = wf.max_recoveries
        if most is not None and record.recoveries > most:  # a poison input, likely
            poisoned.append((record, most))
        else:
            runnable.append((wf, record))
    return runnable, poisoned
