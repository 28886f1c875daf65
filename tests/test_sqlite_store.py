"""The SQLite store: URLs, schema versions, durability modes, sharing a file."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import time

import pytest

import legato
from legato.store import SqliteStore
from legato.store._sqlite import parse_sqlite_url
from legato.store._sqlite_schema import SCHEMA_VERSION


@legato.step
async def echo(x: str) -> str:
    return x


@legato.workflow
async def echo_twice(x: str) -> list[str]:
    return [await echo(x), await echo(x)]


def pragma(sqlite_db: str, name: str) -> object:
    with sqlite3.connect(sqlite_db) as conn:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]


async def test_a_new_file_gets_the_schema_and_wal(sqlite_db):
    async with legato.Runtime(sqlite_db):
        pass
    assert pragma(sqlite_db, "journal_mode") == "wal"
    with sqlite3.connect(sqlite_db) as conn:
        assert conn.execute("SELECT max(version) FROM legato_schema").fetchone()[0] == (
            SCHEMA_VERSION)


async def test_a_newer_schema_is_refused_and_left_untouched(sqlite_db):
    async with legato.Runtime(sqlite_db) as rt:
        await rt.run(echo_twice, "kept", id="old")
    with sqlite3.connect(sqlite_db) as conn:
        conn.execute("INSERT INTO legato_schema (version) VALUES (?)", (SCHEMA_VERSION + 1,))
    with pytest.raises(legato.SchemaVersionError, match="upgrade legato"):
        async with legato.Runtime(sqlite_db):
            pass
    with sqlite3.connect(sqlite_db) as conn:
        assert conn.execute("SELECT status FROM workflows WHERE id = 'old'").fetchone() == (
            "succeeded",)
        assert conn.execute("SELECT count(*) FROM legato_schema").fetchone()[0] == (
            SCHEMA_VERSION + 1)


async def test_reopening_does_not_migrate_twice(sqlite_db):
    for _ in range(3):
        async with legato.Runtime(sqlite_db):
            pass
    with sqlite3.connect(sqlite_db) as conn:
        assert conn.execute("SELECT count(*) FROM legato_schema").fetchone()[0] == (
            SCHEMA_VERSION)


async def test_a_version_1_file_is_migrated_with_its_workflows_kept(sqlite_db):
    async with legato.Runtime(sqlite_db) as rt:
        await rt.run(echo_twice, "kept", id="old")
    with sqlite3.connect(sqlite_db) as conn:  # as legato 0.1's first release left it
        conn.execute("ALTER TABLE workflows DROP COLUMN run_id")
        conn.execute("ALTER TABLE workflows DROP COLUMN failed_at")
        conn.execute("DROP TABLE news")
        conn.execute("DELETE FROM legato_schema WHERE version > 1")
    async with legato.Runtime(sqlite_db) as rt:
        info = await rt.get("old")
        assert await rt.handle("old").result() == ["kept", "kept"]
    assert info.status == "succeeded" and len(info.run_id) == 32


async def test_synchronous_full_commits_through_the_writer_thread(tmp_path):
    url = f"sqlite:///{tmp_path}/full.sqlite_db?synchronous=full"
    store = SqliteStore(url)
    assert store.synchronous == "FULL"
    async with legato.Runtime(url) as rt:
        assert await rt.run(echo_twice, "safe", id="f") == ["safe", "safe"]
        # asked of the writer connection itself: FULL is 2
        assert store is not rt.store
        assert rt.store._writer.execute("PRAGMA synchronous").fetchone()[0] == 2  # type: ignore[attr-defined]


def test_store_urls():
    assert parse_sqlite_url("legato.sqlite_db")[1] == "NORMAL"
    assert str(parse_sqlite_url("sqlite:///rel/x.sqlite_db")[0]) == "rel/x.sqlite_db"
    assert str(parse_sqlite_url("sqlite:////abs/x.sqlite_db")[0]) == "/abs/x.sqlite_db"
    with pytest.raises(ValueError, match="synchronous='sometimes'"):
        parse_sqlite_url("sqlite:///x.sqlite_db?synchronous=sometimes")
    with pytest.raises(ValueError, match="names no file"):
        parse_sqlite_url("sqlite:///:memory:")
    with pytest.raises(ValueError, match="unknown store scheme 'mysql'"):
        legato.Runtime("mysql://localhost/x")


async def test_two_runtimes_share_one_file_and_never_run_a_workflow_twice(sqlite_db):
    runs: list[str] = []

    @legato.step
    async def note(i: int) -> int:
        runs.append(f"w{i}")
        await asyncio.sleep(0)
        return i

    @legato.workflow(name="noted")
    async def noted(i: int) -> int:
        return await note(i)

    async with (
        legato.Runtime(sqlite_db, worker=False) as client,
        legato.Runtime(sqlite_db) as a,
        legato.Runtime(sqlite_db) as b,
    ):
        handles = [await client.start(noted, i, id=f"w{i}") for i in range(50)]
        assert [await h.result(timeout=10) for h in handles] == list(range(50))
        assert a.engine.owner != b.engine.owner
    assert sorted(runs) == sorted(f"w{i}" for i in range(50))


_OPEN_AT = """
import asyncio, sys, time
from legato.store import SqliteStore

async def main() -> None:
    store = SqliteStore(sys.argv[1])
    time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
    await store.open()
    await store.close()

asyncio.run(main())
"""


def test_processes_opening_a_new_file_at_once_all_succeed(sqlite_db):
    # switching a new file to WAL fails at once, without the busy handler, while
    # another process does the same; opening retries
    at = str(time.time() + 0.5)
    procs = [subprocess.Popen([sys.executable, "-c", _OPEN_AT, sqlite_db, at],
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    errors = [p.communicate(timeout=30)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], "\n".join(errors)
    with sqlite3.connect(sqlite_db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_a_pathlib_path_names_a_sqlite_file(tmp_path):
    async with legato.Runtime(tmp_path / "by-path.db") as rt:
        assert await rt.run(echo_twice, "p", id="p") == ["p", "p"]
    assert (tmp_path / "by-path.db").exists()
