"""The SQLite schema, as numbered migrations.

A database records the version it is at in ``legato_schema``. Opening one
runs the migrations it lacks, in one transaction; opening one written by a
newer legato fails with :class:`~legato.SchemaVersionError` and changes nothing.
"""

from __future__ import annotations

import sqlite3

from .._errors import SchemaVersionError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate"]

# When a workflow that is not ready becomes due: a pending one at ``not_before``,
# a waiting one at the earlier of ``wake_at`` and ``deadline`` (``min`` of SQLite
# is NULL if either is). A ready one is due already; the others never are.
DUE_AT = (
    "CASE WHEN ready THEN NULL WHEN status = 'pending' THEN not_before"
    " WHEN status = 'waiting' THEN min(coalesce(wake_at, deadline), coalesce(deadline, wake_at))"
    " END")

MIGRATIONS: list[str] = [
    # 1: workflows, their checkpoints, signals, events and queues
    """
    CREATE TABLE workflows (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        status      TEXT NOT NULL,
        input       BLOB NOT NULL,
        result      BLOB,
        error       BLOB,
        owner       TEXT,
        lease_until REAL NOT NULL DEFAULT 0,
        wake_at     REAL,
        deadline    REAL,
        cancel      INTEGER NOT NULL DEFAULT 0,
        parent_id   TEXT,
        created_at  REAL NOT NULL,
        updated_at  REAL NOT NULL,
        finished_at REAL,
        queue       TEXT,
        priority    INTEGER NOT NULL DEFAULT 0,
        not_before  REAL,
        dedup_key   TEXT
    );
    CREATE INDEX workflows_by_status ON workflows (status, lease_until);
    CREATE INDEX workflows_by_wake ON workflows (wake_at) WHERE status = 'waiting';
    CREATE INDEX workflows_by_owner ON workflows (owner) WHERE owner IS NOT NULL;
    CREATE INDEX workflows_by_parent ON workflows (parent_id) WHERE parent_id IS NOT NULL;
    CREATE INDEX workflows_queued ON workflows (queue, status, priority DESC, created_at)
        WHERE queue IS NOT NULL;
    CREATE INDEX workflows_delayed ON workflows (not_before)
        WHERE status = 'pending' AND not_before IS NOT NULL;
    CREATE UNIQUE INDEX workflows_dedup ON workflows (queue, dedup_key)
        WHERE dedup_key IS NOT NULL AND status IN ('pending', 'running', 'waiting');
    CREATE TABLE queue_starts (
        queue TEXT NOT NULL,
        at    REAL NOT NULL
    );
    CREATE INDEX queue_starts_by_time ON queue_starts (queue, at);
    CREATE TABLE signals (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        workflow_id TEXT NOT NULL,
        name        TEXT NOT NULL,
        payload     BLOB,
        created_at  REAL NOT NULL,
        consumed_at TEXT
    );
    CREATE INDEX signals_waiting ON signals (workflow_id, name, seq) WHERE consumed_at IS NULL;
    CREATE TABLE events (
        workflow_id TEXT NOT NULL,
        key         TEXT NOT NULL,
        value       BLOB,
        updated_at  REAL NOT NULL,
        PRIMARY KEY (workflow_id, key)
    ) WITHOUT ROWID;
    CREATE TABLE steps (
        workflow_id TEXT NOT NULL,
        position    TEXT NOT NULL,
        kind        TEXT NOT NULL,
        name        TEXT NOT NULL,
        ok          INTEGER NOT NULL,
        value       BLOB,
        created_at  REAL NOT NULL,
        PRIMARY KEY (workflow_id, position)
    ) WITHOUT ROWID;
    """,
    # 2: a run id per start and per resume (Beluga's and Temporal's run id)
    """
    ALTER TABLE workflows ADD COLUMN run_id TEXT NOT NULL DEFAULT '';
    UPDATE workflows SET run_id = lower(hex(randomblob(16)));
    """,
    # 3: news for other processes on the file (see _sqlite_news)
    """
    CREATE TABLE news (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        kind        TEXT NOT NULL,
        workflow_id TEXT NOT NULL
    );
    """,
    # 4: where the failure that ended a run was recorded (see _forget)
    """
    ALTER TABLE workflows ADD COLUMN failed_at TEXT;
    """,
    # 5: claims and next_wake read only what is due (see _sqlite_due). ``ready``:
    # claimable now, whatever the time; ``due_at``: the durable time a pending or
    # waiting workflow that is not ready yet becomes so, kept by SQLite itself
    f"""
    ALTER TABLE workflows ADD COLUMN ready INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE workflows ADD COLUMN due_at REAL GENERATED ALWAYS AS ({DUE_AT}) VIRTUAL;
    UPDATE workflows SET ready = 1 WHERE status = 'pending' AND not_before IS NULL;
    DROP INDEX workflows_by_wake;
    DROP INDEX workflows_delayed;
    CREATE INDEX workflows_due ON workflows (due_at) WHERE due_at IS NOT NULL;
    CREATE INDEX workflows_ready ON workflows (priority DESC, created_at, name)
        WHERE ready = 1 AND queue IS NULL;
    CREATE INDEX workflows_ready_queued ON workflows (queue, status, priority DESC, created_at)
        WHERE ready = 1 AND queue IS NOT NULL;
    CREATE INDEX workflows_ready_fifo ON workflows (queue, status, created_at)
        WHERE ready = 1 AND queue IS NOT NULL;
    """,
    # 6: the workers serving the store and the workflows they know (see WorkerRecord)
    """
    CREATE TABLE workers (
        id          TEXT PRIMARY KEY,
        names       TEXT NOT NULL,
        queues      TEXT NOT NULL,
        started_at  REAL NOT NULL,
        seen_at     REAL NOT NULL
    );
    """,
    # 7: continue-as-new keeps the run before the current one (see continue_as_new)
    """
    ALTER TABLE workflows ADD COLUMN previous_run_id TEXT;
    CREATE TABLE previous_steps (
        workflow_id TEXT NOT NULL,
        run_id      TEXT NOT NULL,
        position    TEXT NOT NULL,
        kind        TEXT NOT NULL,
        name        TEXT NOT NULL,
        ok          INTEGER NOT NULL,
        value       BLOB,
        created_at  REAL NOT NULL,
        PRIMARY KEY (workflow_id, position)
    ) WITHOUT ROWID;
    """,
    # 8: debounced starts: one pending run per workflow name and key; a run holds its key
    # until its first start (a resumed run is pending again under a new run id)
    """
    ALTER TABLE workflows ADD COLUMN debounce_key TEXT;
    ALTER TABLE workflows ADD COLUMN debounce_run TEXT;
    ALTER TABLE workflows ADD COLUMN debounce_until REAL;
    CREATE UNIQUE INDEX workflows_debounce ON workflows (name, debounce_key)
        WHERE debounce_key IS NOT NULL AND status = 'pending' AND run_id = debounce_run;
    """,
    # 9: takeovers of a lapsed lease since start or resume (see Claimed, max_recoveries)
    """
    ALTER TABLE workflows ADD COLUMN recoveries INTEGER NOT NULL DEFAULT 0;
    """,
    # 10: lower priority first, as in DBOS and Temporal: the claim-order indexes ascend
    """
    DROP INDEX workflows_ready;
    DROP INDEX workflows_ready_queued;
    DROP INDEX workflows_queued;
    CREATE INDEX workflows_ready ON workflows (priority, created_at, name)
        WHERE ready = 1 AND queue IS NULL;
    CREATE INDEX workflows_ready_queued ON workflows (queue, status, priority, created_at)
        WHERE ready = 1 AND queue IS NOT NULL;
    CREATE INDEX workflows_queued ON workflows (queue, status, priority, created_at)
        WHERE queue IS NOT NULL;
    """,
    # 11: a concurrency key per queued workflow (see QueueLimits.key_concurrency)
    """
    ALTER TABLE workflows ADD COLUMN key TEXT;
    CREATE INDEX workflows_ready_keyed ON workflows (queue, status, key, priority, created_at)
        WHERE ready = 1 AND queue IS NOT NULL;
    """,
    # 12: cron schedules: definitions, and state a compare-and-set advances (_sqlite_schedules)
    """
    CREATE TABLE schedules (
        name        TEXT PRIMARY KEY,
        workflow    TEXT NOT NULL,
        cron        TEXT NOT NULL,
        timezone    TEXT NOT NULL,
        input       BLOB NOT NULL,
        overlap     TEXT NOT NULL,
        catch_up    TEXT NOT NULL,
        paused      INTEGER NOT NULL DEFAULT 0,
        next_tick   REAL NOT NULL,
        last_tick   REAL,
        last_run    TEXT,
        buffered    REAL,
        created_at  REAL NOT NULL,
        updated_at  REAL NOT NULL
    );
    """,
    # 13: streams (legato.stream / handle.stream) and updates (rt.update / legato.wait_for_update)
    """
    CREATE TABLE streams (
        workflow_id TEXT NOT NULL,
        key         TEXT NOT NULL,
        seq         INTEGER NOT NULL,
        origin      TEXT NOT NULL,
        value       BLOB,
        created_at  REAL NOT NULL,
        PRIMARY KEY (workflow_id, key, seq)
    ) WITHOUT ROWID;
    CREATE UNIQUE INDEX streams_origin ON streams (workflow_id, key, origin);
    CREATE TABLE updates (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        workflow_id TEXT NOT NULL,
        id          TEXT NOT NULL,
        name        TEXT NOT NULL,
        payload     BLOB NOT NULL,
        created_at  REAL NOT NULL,
        taken_at    TEXT,
        reply       BLOB,
        replied_at  REAL
    );
    CREATE UNIQUE INDEX updates_by_id ON updates (workflow_id, id);
    CREATE INDEX updates_waiting ON updates (workflow_id, name, seq) WHERE taken_at IS NULL;
    """,
    # 14: keyed queues serve their keys round-robin from a table of the keys with
    # ready work, which triggers count (see _sqlite_queue); per-key rate windows.
    # A key that runs out of work keeps its row (out of the partial indexes, so
    # out of line) until a claim clears it: one DELETE a claim, not one a row.
    """
    CREATE TABLE queue_keys (
        queue   TEXT NOT NULL,
        key     TEXT NOT NULL,
        pending INTEGER NOT NULL DEFAULT 0,
        waiting INTEGER NOT NULL DEFAULT 0,
        served  INTEGER NOT NULL,
        open_at REAL,
        PRIMARY KEY (queue, key)
    ) WITHOUT ROWID;
    CREATE INDEX queue_keys_rotation ON queue_keys (queue, served);
    CREATE INDEX queue_keys_pending ON queue_keys (queue, served)
        WHERE pending > 0 AND open_at IS NULL;
    CREATE INDEX queue_keys_waiting ON queue_keys (queue, served) WHERE waiting > 0;
    CREATE INDEX queue_keys_closed ON queue_keys (queue, open_at) WHERE open_at IS NOT NULL;
    CREATE INDEX workflows_running_keyed ON workflows (queue, key)
        WHERE status = 'running' AND key IS NOT NULL;
    CREATE TABLE key_starts (
        queue TEXT NOT NULL,
        key   TEXT NOT NULL,
        at    REAL NOT NULL
    );
    CREATE INDEX key_starts_by_key ON key_starts (queue, key, at);
    CREATE INDEX key_starts_by_time ON key_starts (queue, at);
    INSERT INTO queue_keys (queue, key, pending, waiting, served)
        SELECT queue, key, sum(status = 'pending'), sum(status = 'waiting'),
               row_number() OVER (PARTITION BY queue ORDER BY min(created_at))
        FROM workflows WHERE ready = 1 AND queue IS NOT NULL AND key IS NOT NULL
        AND status IN ('pending', 'waiting') GROUP BY queue, key;
    CREATE TRIGGER queue_keys_on_insert AFTER INSERT ON workflows
    WHEN new.key IS NOT NULL AND new.queue IS NOT NULL AND new.ready
        AND new.status IN ('pending', 'waiting')
    BEGIN
        INSERT INTO queue_keys (queue, key, pending, waiting, served)
        VALUES (new.queue, new.key, new.status = 'pending', new.status = 'waiting',
                coalesce((SELECT max(served) FROM queue_keys WHERE queue = new.queue), 0) + 1)
        ON CONFLICT (queue, key) DO UPDATE
        SET served = iif(pending + waiting > 0, served, excluded.served),
            pending = pending + excluded.pending, waiting = waiting + excluded.waiting;
    END;
    CREATE TRIGGER queue_keys_on_leave AFTER UPDATE OF status, ready, queue, key ON workflows
    WHEN old.key IS NOT NULL AND old.queue IS NOT NULL AND old.ready
        AND old.status IN ('pending', 'waiting') AND NOT (new.ready IS old.ready
        AND new.status IS old.status AND new.queue IS old.queue AND new.key IS old.key)
    BEGIN
        UPDATE queue_keys SET pending = pending - (old.status = 'pending'),
                              waiting = waiting - (old.status = 'waiting')
        WHERE queue = old.queue AND key = old.key;
    END;
    CREATE TRIGGER queue_keys_on_join AFTER UPDATE OF status, ready, queue, key ON workflows
    WHEN new.key IS NOT NULL AND new.queue IS NOT NULL AND new.ready
        AND new.status IN ('pending', 'waiting') AND NOT (new.ready IS old.ready
        AND new.status IS old.status AND new.queue IS old.queue AND new.key IS old.key)
    BEGIN
        INSERT INTO queue_keys (queue, key, pending, waiting, served)
        VALUES (new.queue, new.key, new.status = 'pending', new.status = 'waiting',
                coalesce((SELECT max(served) FROM queue_keys WHERE queue = new.queue), 0) + 1)
        ON CONFLICT (queue, key) DO UPDATE
        SET served = iif(pending + waiting > 0, served, excluded.served),
            pending = pending + excluded.pending, waiting = waiting + excluded.waiting;
    END;
    CREATE TRIGGER queue_keys_on_delete AFTER DELETE ON workflows
    WHEN old.key IS NOT NULL AND old.queue IS NOT NULL AND old.ready
        AND old.status IN ('pending', 'waiting')
    BEGIN
        UPDATE queue_keys SET pending = pending - (old.status = 'pending'),
                              waiting = waiting - (old.status = 'waiting')
        WHERE queue = old.queue AND key = old.key;
    END;
    """,
    # 15: nothing reads workflows by owner alone (fences read by id and owner), and the
    # index cost a write at every claim, renewal and finish (issue 19)
    """
    DROP INDEX IF EXISTS workflows_by_owner;
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to :data:`SCHEMA_VERSION`; return the version found."""
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS legato_schema (version INTEGER NOT NULL)")
        row = conn.execute("SELECT max(version) FROM legato_schema").fetchone()
        found = row[0] or 0
        if found > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"this database is at schema version {found}, but this legato knows only "
                f"up to {SCHEMA_VERSION}; upgrade legato (pip install -U legato) "
                "rather than open a newer database with an older release"
            )
        for version in range(found + 1, SCHEMA_VERSION + 1):
            for statement in _statements(MIGRATIONS[version - 1]):
                conn.execute(statement)
            conn.execute("INSERT INTO legato_schema (version) VALUES (?)", (version,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return int(found)


def _statements(script: str) -> list[str]:
    """The statements of ``script``, a trigger's body kept whole (its ``;`` don't end it).

    ``executescript`` would do the split but commits first, and a migration
    runs inside the transaction that records its version.
    """
    statements, pending = [], ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                statements.append(pending)
            pending = ""
    return statements
