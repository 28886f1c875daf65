"""Streams on PostgreSQL: a write is one statement, one round trip (see ``_sqlite_streams``).

The statement fences on the workflow row (``FOR SHARE``, as checkpoints do),
skips a write whose origin is there already, takes the next offset from the
stream's row in ``stream_heads`` (refused once closed), records the write's
checkpoint when it comes from workflow code, and NOTIFYs readers — all or
nothing. The head row is updated with ``ON CONFLICT DO UPDATE``, which waits
for a concurrent writer of the stream and reads its committed offset: two
steps writing one stream at once get the next offsets, in commit order, so a
reader that has read offset ``n`` never finds a smaller one committed later.
"""

from __future__ import annotations

import time
from typing import Any

from ._protocol import StepRecord

__all__ = ["READ_SQL", "WRITE_SQL", "Rows", "outcome", "write_args"]

#: ``(offset, value)`` pairs; a value ``None`` is the close marker
Rows = list[tuple[int, bytes | None]]

READ_SQL = ("SELECT seq, value FROM streams WHERE workflow_id = $1 AND key = $2 AND seq >= $3"
            " ORDER BY seq LIMIT $4")

# $1 workflow id, $2 owner, $3 key, $4 origin, $5 value (NULL: close), $6 time,
# $7 checkpoint position (NULL: none), $8 checkpoint kind, $9 channel, $10 news
WRITE_SQL = """
WITH fence AS MATERIALIZED (
    SELECT 1 FROM workflows WHERE id = $1 AND owner = $2 AND status = 'running' FOR SHARE
), dup AS MATERIALIZED (
    SELECT 1 FROM streams WHERE workflow_id = $1 AND key = $3 AND origin = $4
), head AS (
    INSERT INTO stream_heads AS h (workflow_id, key, next_seq, closed)
    SELECT $1, $3, 1, $5::bytea IS NULL FROM fence WHERE NOT EXISTS (SELECT 1 FROM dup)
    ON CONFLICT (workflow_id, key) DO UPDATE
    SET next_seq = h.next_seq + 1, closed = $5::bytea IS NULL WHERE NOT h.closed
    RETURNING next_seq - 1 AS seq
), ins AS (
    INSERT INTO streams (workflow_id, key, seq, origin, value, created_at)
    SELECT $1, $3, seq, $4, $5::bytea, $6 FROM head
    ON CONFLICT (workflow_id, key, origin) DO NOTHING
    RETURNING seq
), step AS (
    INSERT INTO steps (workflow_id, position, kind, name, ok, value, created_at)
    SELECT $1, $7::text, $8, $3, true, NULL, $6 FROM fence
    WHERE $7::text IS NOT NULL
      AND (EXISTS (SELECT 1 FROM ins) OR EXISTS (SELECT 1 FROM dup) OR $5::bytea IS NULL)
    RETURNING 1
), note AS (
    SELECT pg_notify($9, $10) FROM ins
)
SELECT EXISTS (SELECT 1 FROM fence), EXISTS (SELECT 1 FROM ins) OR EXISTS (SELECT 1 FROM dup),
       (SELECT count(*) FROM note), (SELECT count(*) FROM step)
"""


def write_args(channel: str, news: str, workflow_id: str, owner: str, key: str, origin: str,
               value: bytes | None, step: StepRecord | None) -> tuple[Any, ...]:
    """The parameters of :data:`WRITE_SQL`."""
    return (workflow_id, owner, key, origin, value, time.time(),
            None if step is None else step.position, "" if step is None else step.kind,
            channel, news)


def outcome(row: Any, value: bytes | None) -> str:
    """``"written"``, ``"closed"`` or ``"lost"`` from :data:`WRITE_SQL`'s row."""
    held, written = row[0], row[1]
    if not held:
        return "lost"
    if written or value is None:  # closing a closed stream is a no-op
        return "written"
    return "closed"
