"""Workflows taken over from a worker that died: said in the log.

A claim that finds a ``running`` workflow whose lease lapsed takes it over
(see :class:`~legato.store.Claimed`): its worker stopped renewing, because
the process died, was killed, or hung. Each takeover is a WARNING naming
both workers, with structured fields for log pipelines::

    took over workflow 'order-7' (charge) from worker host:41:ab12 whose lease lapsed

A lease that lapsed under this very worker (its event loop stalled) is
taken back quietly: the stall itself is logged by the lease keeper.
"""

from __future__ import annotations

import logging

from ...store import Claimed, owner_worker

__all__ = ["log_takeover"]

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
