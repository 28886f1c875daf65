"""The PostgreSQL schema, as numbered migrations.

Everything lives in one PostgreSQL schema (``legato`` unless the URL says
``?schema=name``), so several deployments, or tests, share a database
without meeting. As with SQLite, the schema records its version in
``legato_schema``; opening it runs the migrations it lacks in one
transaction, under an advisory lock so workers starting together don't race;
a schema written by a newer legato is refused with
:class:`~legato.SchemaVersionError` and left untouched.
"""

from __future__ import annotations

import re
from typing import Any

from .._errors import SchemaVersionError

__all__ = ["DEFAULT_SCHEMA", "MIGRATIONS", "SCHEMA_VERSION", "check_schema_name", "migrate"]

DEFAULT_SCHEMA = "legato"

MIGRATIONS: list[str] = [
    # 1: workflows, their checkpoints, signals, events and queues (as SQLite's)
    """
    CREATE TABLE workflows (
        id          text PRIMARY KEY,
        name        text NOT NULL,
        status      text NOT NULL,
        input       bytea NOT NULL,
        result      bytea,
        error       bytea,
        owner       text,
        lease_until double precision NOT NULL DEFAULT 0,
        wake_at     double precision,
        deadline    double precision,
        cancel      boolean NOT NULL DEFAULT false,
        parent_id   text,
        created_at  double precision NOT NULL,
        updated_at  double precision NOT NULL,
        finished_at double precision,
        queue       text,
        priority    integer NOT NULL DEFAULT 0,
        not_before  double precision,
        dedup_key   text
    );
    CREATE INDEX workflows_by_status ON workflows (status, lease_until);
    CREATE INDEX workflows_by_wake ON workflows (wake_at) WHERE status = 'waiting';
    CREATE INDEX workflows_by_owner ON workflows (owner) WHERE owner IS NOT NULL;
    CREATE INDEX workflows_by_parent ON workflows (parent_id) WHERE parent_id IS NOT NULL;
    CREATE INDEX workflows_by_created ON workflows (created_at);
    CREATE INDEX workflows_queued ON workflows (queue, status, priority DESC, created_at)
        WHERE queue IS NOT NULL;
    CREATE INDEX workflows_delayed ON workflows (not_before)
        WHERE status = 'pending' AND not_before IS NOT NULL;
    CREATE UNIQUE INDEX workflows_dedup ON workflows (queue, dedup_key)
        WHERE dedup_key IS NOT NULL AND status IN ('pending', 'running', 'waiting');
    CREATE TABLE queue_starts (
        queue text NOT NULL,
        at    double precision NOT NULL
    );
    CREATE INDEX queue_starts_by_time ON queue_starts (queue, at);
    CREATE TABLE signals (
        seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        workflow_id text NOT NULL,
        name        text NOT NULL,
        payload     bytea,
        created_at  double precision NOT NULL,
        consumed_at text
    );
    CREATE INDEX signals_waiting ON signals (workflow_id, name, seq) WHERE consumed_at IS NULL;
    CREATE TABLE events (
        workflow_id text NOT NULL,
        key         text NOT NULL,
        value       bytea,
        updated_at  double precision NOT NULL,
        PRIMARY KEY (workflow_id, key)
    );
    CREATE TABLE steps (
        workflow_id text NOT NULL,
        position    text NOT NULL,
        kind        text NOT NULL,
        name        text NOT NULL,
        ok          boolean NOT NULL,
        value       bytea,
        created_at  double precision NOT NULL,
        PRIMARY KEY (workflow_id, position)
    );
    """,
    # 2: a run id per start and per resume (Beluga's and Temporal's run id)
    """
    ALTER TABLE workflows ADD COLUMN run_id text NOT NULL DEFAULT '';
    UPDATE workflows SET run_id = md5(random()::text || id);
    """,
    # 3: where the failure that ended a run was recorded (see _forget)
    """
    ALTER TABLE workflows ADD COLUMN failed_at text;
    """,
    # 4: claims and next_wake read only what is due (as SQLite's 5, see _postgres_due)
    """
    ALTER TABLE workflows ADD COLUMN ready boolean NOT NULL DEFAULT false;
    ALTER TABLE workflows ADD COLUMN due_at double precision GENERATED ALWAYS AS (
        CASE WHEN ready THEN NULL WHEN status = 'pending' THEN not_before
        WHEN status = 'waiting' THEN LEAST(wake_at, deadline) END) STORED;
    UPDATE workflows SET ready = true WHERE status = 'pending' AND not_before IS NULL;
    DROP INDEX workflows_by_wake;
    DROP INDEX workflows_delayed;
    CREATE INDEX workflows_due ON workflows (due_at) WHERE due_at IS NOT NULL;
    CREATE INDEX workflows_ready ON workflows (priority DESC, created_at, name)
        WHERE ready AND queue IS NULL;
    CREATE INDEX workflows_ready_queued ON workflows (queue, status, priority DESC, created_at)
        WHERE ready AND queue IS NOT NULL;
    CREATE INDEX workflows_ready_fifo ON workflows (queue, status, created_at)
        WHERE ready AND queue IS NOT NULL;
    """,
    # 5: the workers serving the store and the workflows they know (see WorkerRecord)
    """
    CREATE TABLE workers (
        id          text PRIMARY KEY,
        names       text[] NOT NULL,
        queues      text[] NOT NULL,
        started_at  double precision NOT NULL,
        seen_at     double precision NOT NULL
    );
    """,
    # 6: continue-as-new keeps the run before the current one (see continue_as_new)
    """
    ALTER TABLE workflows ADD COLUMN previous_run_id text;
    CREATE TABLE previous_steps (
        workflow_id text NOT NULL,
        run_id      text NOT NULL,
        position    text NOT NULL,
        kind        text NOT NULL,
        name        text NOT NULL,
        ok          boolean NOT NULL,
        value       bytea,
        created_at  double precision NOT NULL,
        PRIMARY KEY (workflow_id, position)
    );
    """,
    # 7: debounced starts: one pending run per workflow name and key; a run holds its key
    # until its first start (a resumed run is pending again under a new run id)
    """
    ALTER TABLE workflows ADD COLUMN debounce_key text;
    ALTER TABLE workflows ADD COLUMN debounce_run text;
    ALTER TABLE workflows ADD COLUMN debounce_until double precision;
    CREATE UNIQUE INDEX workflows_debounce ON workflows (name, debounce_key)
        WHERE debounce_key IS NOT NULL AND status = 'pending' AND run_id = debounce_run;
    """,
    # 8: takeovers of a lapsed lease since start or resume (see Claimed, max_recoveries)
    """
    ALTER TABLE workflows ADD COLUMN recoveries integer NOT NULL DEFAULT 0;
    """,
    # 9: lower priority first, as in DBOS and Temporal: the claim-order indexes ascend
    """
    DROP INDEX workflows_ready;
    DROP INDEX workflows_ready_queued;
    DROP INDEX workflows_queued;
    CREATE INDEX workflows_ready ON workflows (priority, created_at, name)
        WHERE ready AND queue IS NULL;
    CREATE INDEX workflows_ready_queued ON workflows (queue, status, priority, created_at)
        WHERE ready AND queue IS NOT NULL;
    CREATE INDEX workflows_queued ON workflows (queue, status, priority, created_at)
        WHERE queue IS NOT NULL;
    """,
    # 10: a concurrency key per queued workflow (see QueueLimits.key_concurrency)
    """
    ALTER TABLE workflows ADD COLUMN key text;
    CREATE INDEX workflows_ready_keyed ON workflows (queue, status, key, priority, created_at)
        WHERE ready AND queue IS NOT NULL;
    """,
    # 11: cron schedules: definitions, and state a compare-and-set advances (_postgres_schedules)
    """
    CREATE TABLE schedules (
        name        text PRIMARY KEY,
        workflow    text NOT NULL,
        cron        text NOT NULL,
        timezone    text NOT NULL,
        input       bytea NOT NULL,
        overlap     text NOT NULL,
        catch_up    text NOT NULL,
        paused      boolean NOT NULL DEFAULT false,
        next_tick   double precision NOT NULL,
        last_tick   double precision,
        last_run    text,
        buffered    double precision,
        created_at  double precision NOT NULL,
        updated_at  double precision NOT NULL
    );
    """,
    # 12: streams (legato.stream / handle.stream) and updates (rt.update / legato.wait_for_update)
    """
    CREATE TABLE streams (
        workflow_id text NOT NULL,
        key         text NOT NULL,
        seq         bigint NOT NULL,
        origin      text NOT NULL,
        value       bytea,
        created_at  double precision NOT NULL,
        PRIMARY KEY (workflow_id, key, seq)
    );
    CREATE UNIQUE INDEX streams_origin ON streams (workflow_id, key, origin);
    CREATE TABLE stream_heads (
        workflow_id text NOT NULL,
        key         text NOT NULL,
        next_seq    bigint NOT NULL,
        closed      boolean NOT NULL,
        PRIMARY KEY (workflow_id, key)
    );
    CREATE TABLE updates (
        seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        workflow_id text NOT NULL,
        id          text NOT NULL,
        name        text NOT NULL,
        payload     bytea NOT NULL,
        created_at  double precision NOT NULL,
        taken_at    text,
        reply       bytea,
        replied_at  double precision
    );
    CREATE UNIQUE INDEX updates_by_id ON updates (workflow_id, id);
    CREATE INDEX updates_waiting ON updates (workflow_id, name, seq) WHERE taken_at IS NULL;
    """,
    # 13: keyed queues serve their keys round-robin from a table of the keys with
    # ready work, which a trigger counts (as SQLite's 14); per-key rate windows
    """
    CREATE TABLE queue_keys (
        queue   text NOT NULL,
        key     text NOT NULL,
        pending integer NOT NULL DEFAULT 0,
        waiting integer NOT NULL DEFAULT 0,
        served  bigint NOT NULL,
        open_at double precision,
        PRIMARY KEY (queue, key)
    );
    CREATE INDEX queue_keys_rotation ON queue_keys (queue, served);
    CREATE INDEX queue_keys_pending ON queue_keys (queue, served)
        WHERE pending > 0 AND open_at IS NULL;
    CREATE INDEX queue_keys_waiting ON queue_keys (queue, served) WHERE waiting > 0;
    CREATE INDEX queue_keys_closed ON queue_keys (queue, open_at) WHERE open_at IS NOT NULL;
    CREATE INDEX workflows_running_keyed ON workflows (queue, key)
        WHERE status = 'running' AND key IS NOT NULL;
    CREATE TABLE key_starts (
        queue text NOT NULL,
        key   text NOT NULL,
        at    double precision NOT NULL
    );
    CREATE INDEX key_starts_by_key ON key_starts (queue, key, at);
    CREATE INDEX key_starts_by_time ON key_starts (queue, at);
    INSERT INTO queue_keys (queue, key, pending, waiting, served)
        SELECT queue, key, count(*) FILTER (WHERE status = 'pending'),
               count(*) FILTER (WHERE status = 'waiting'),
               row_number() OVER (PARTITION BY queue ORDER BY min(created_at))
        FROM workflows WHERE ready AND queue IS NOT NULL AND key IS NOT NULL
        AND status IN ('pending', 'waiting') GROUP BY queue, key;
    CREATE FUNCTION queue_keys_count() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
    BEGIN
        IF TG_OP <> 'INSERT' AND OLD.ready AND OLD.key IS NOT NULL AND OLD.queue IS NOT NULL
                AND OLD.status IN ('pending', 'waiting') THEN
            UPDATE queue_keys SET pending = pending - (OLD.status = 'pending')::int,
                                  waiting = waiting - (OLD.status = 'waiting')::int
            WHERE queue = OLD.queue AND key = OLD.key;
        END IF;
        IF TG_OP <> 'DELETE' AND NEW.ready AND NEW.key IS NOT NULL AND NEW.queue IS NOT NULL
                AND NEW.status IN ('pending', 'waiting') THEN
            INSERT INTO queue_keys AS k (queue, key, pending, waiting, served)
            VALUES (NEW.queue, NEW.key, (NEW.status = 'pending')::int,
                    (NEW.status = 'waiting')::int,
                    coalesce((SELECT max(served) FROM queue_keys WHERE queue = NEW.queue), 0) + 1)
            ON CONFLICT (queue, key) DO UPDATE
            SET served = CASE WHEN k.pending + k.waiting > 0 THEN k.served ELSE excluded.served END,
                pending = k.pending + excluded.pending, waiting = k.waiting + excluded.waiting;
        END IF;
        RETURN NULL;
    END $$;
    CREATE TRIGGER queue_keys_on_insert AFTER INSERT ON workflows FOR EACH ROW
        WHEN (NEW.key IS NOT NULL AND NEW.ready) EXECUTE FUNCTION queue_keys_count();
    CREATE TRIGGER queue_keys_on_update AFTER UPDATE OF status, ready, queue, key ON workflows
        FOR EACH ROW WHEN ((OLD.key IS NOT NULL OR NEW.key IS NOT NULL)
            AND (OLD.ready, OLD.status, OLD.queue, OLD.key)
                IS DISTINCT FROM (NEW.ready, NEW.status, NEW.queue, NEW.key))
        EXECUTE FUNCTION queue_keys_count();
    CREATE TRIGGER queue_keys_on_delete AFTER DELETE ON workflows FOR EACH ROW
        WHEN (OLD.key IS NOT NULL AND OLD.ready) EXECUTE FUNCTION queue_keys_count();
    """,
    # 14: nothing reads workflows by owner alone (fences read by id and owner), and the
    # index cost a write at every claim, renewal and finish (issue 19)
    """
    DROP INDEX IF EXISTS workflows_by_owner;
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def check_schema_name(name: str) -> str:
    """``name`` if it is a plain PostgreSQL identifier (so it can't inject SQL)."""
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"schema={name!r} is not a plain PostgreSQL name; use letters, digits and "
            "underscores (at most 63), starting with a letter or underscore"
        )
    return name


async def migrate(conn: Any, schema: str) -> int:
    """Bring ``schema`` up to :data:`SCHEMA_VERSION` on asyncpg ``conn``; return the version found.

    The connection's ``search_path`` must name ``schema`` (the store sets it).
    """
    async with conn.transaction():
        # One migrator per schema at a time; the others wait, then find it done.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"legato:{schema}")
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(f'SET LOCAL search_path TO "{schema}"')
        await conn.execute("CREATE TABLE IF NOT EXISTS legato_schema (version integer NOT NULL)")
        found = int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM legato_schema"))
        if found > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"PostgreSQL schema {schema!r} is at schema version {found}, but this legato "
                f"knows only up to {SCHEMA_VERSION}; upgrade legato (pip install -U legato) "
                "rather than open a newer database with an older release"
            )
        for version in range(found + 1, SCHEMA_VERSION + 1):
            await conn.execute(MIGRATIONS[version - 1])
            await conn.execute("INSERT INTO legato_schema (version) VALUES ($1)", version)
    return found
