"""What is due, read through indexes on PostgreSQL: claims and ``next_wake`` cost O(due).

The scheme is SQLite's (see ``_sqlite_due``): ``ready`` marks pending and
waiting workflows claimable whatever the time; ``due_at``, a stored
generated column, is when one that is not ready becomes so. A claim is one
statement: it locks (``SKIP LOCKED``) up to :data:`PROMOTE_MAX` of what fell
due, earliest first, the first ready ones in claim order and lapsed leases;
takes the best ``limit`` of them in claim order (lower priority first, then age); and
marks the other due ones ready, for later claims (of this worker, or of a
worker that has their code or their queue). PostgreSQL can't change one row
twice in a statement: the two updates touch disjoint rows.

Marking rows ready announces them (one ``pending`` notification, however
many rows: PostgreSQL folds equal ones in a transaction). Without it, a
worker whose claim ran beside this one found those rows locked, took
nothing, and slept until its safety poll while they waited.
"""

from __future__ import annotations

from typing import Final

from ._protocol import WF_COLUMNS

__all__ = ["CLAIM_SQL", "NEXT_DUE_SQL", "PROMOTE_MAX"]

PROMOTE_MAX: Final = 1000  # due workflows a claim looks at (and makes ready) at most

# $1 owner, $2 lease_until, $3 now (real time), $4 clock_now (durable), $5 names, $6 limit,
# $7 the claiming worker's attempt prefix ("<worker id>#"), $8 the attempts it runs now
# (ClaimRequest.running: not taken back), $9 the news channel. Returns the rows, each
# with ``previous_owner``: the attempt whose lapsed lease was taken over, if any; a
# recovery when that attempt was another worker's (see Claimed).
CLAIM_SQL: Final = f"""
WITH due AS MATERIALIZED (
    SELECT id, priority, created_at, queue, name FROM workflows
    WHERE due_at <= $4 ORDER BY due_at LIMIT {PROMOTE_MAX} FOR UPDATE SKIP LOCKED
), ready AS MATERIALIZED (
    SELECT id, priority, created_at FROM workflows
    WHERE ready AND queue IS NULL AND name = ANY($5::text[])
    ORDER BY priority, created_at LIMIT $6 FOR UPDATE SKIP LOCKED
), lapsed AS MATERIALIZED (
    SELECT id, priority, created_at, owner FROM workflows
    WHERE status = 'running' AND lease_until < $3 AND name = ANY($5::text[])
        AND NOT coalesce(owner, '') = ANY($8::text[])
    ORDER BY priority, created_at LIMIT $6 FOR UPDATE SKIP LOCKED
), chosen AS MATERIALIZED (
    SELECT id AS chosen_id, previous_owner FROM (
        SELECT id, priority, created_at, NULL::text AS previous_owner FROM due
        WHERE queue IS NULL AND name = ANY($5::text[])
        UNION ALL SELECT id, priority, created_at, NULL::text FROM ready
        UNION ALL SELECT id, priority, created_at, owner FROM lapsed
    ) AS c ORDER BY priority, created_at LIMIT $6
), promoted AS (
    UPDATE workflows SET ready = true
    WHERE id IN (SELECT id FROM due EXCEPT SELECT chosen_id FROM chosen)
    RETURNING pg_notify($9, 'pending')
)
UPDATE workflows SET status = 'running', owner = $1, lease_until = $2, wake_at = NULL,
    ready = false, updated_at = $3, recoveries = recoveries
        + (previous_owner IS NOT NULL AND NOT starts_with(previous_owner, $7))::int
FROM chosen WHERE id = chosen_id
RETURNING {WF_COLUMNS}, previous_owner
"""

NEXT_DUE_SQL: Final = "SELECT min(due_at) FROM workflows WHERE due_at > $1"
