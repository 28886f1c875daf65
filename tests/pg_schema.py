"""A fresh PostgreSQL schema per store, for the ``db``/``pg_url`` fixtures and tests
that need several stores."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator

import pytest

PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"


@contextlib.asynccontextmanager
async def fresh_pg_schema() -> AsyncIterator[str]:
    """A fresh PostgreSQL store URL (a new ``?schema=``, dropped afterwards).

    Uses ``$LEGATO_TEST_POSTGRES`` or a server on 127.0.0.1:5432; skips when
    none answers, unless ``LEGATO_TEST_POSTGRES`` is set (then it fails).
    """
    asyncpg = pytest.importorskip("asyncpg")
    base = os.environ.get("LEGATO_TEST_POSTGRES") or PG_DEFAULT
    try:
        conn = await asyncpg.connect(base, timeout=3)
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        reason = f"PostgreSQL at {base} does not answer ({exc!r})"
        if os.environ.get("LEGATO_TEST_POSTGRES"):
            pytest.fail(f"{reason}; LEGATO_TEST_POSTGRES is set, so this must not skip")
        pytest.skip(f"{reason}; start it or set LEGATO_TEST_POSTGRES to run the PostgreSQL half")
    await conn.close()
    schema = f"legato_test_{uuid.uuid4().hex[:12]}"
    try:
        yield f"{base}{'&' if '?' in base else '?'}schema={schema}"
    finally:
        conn = await asyncpg.connect(base)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()
