"""The SQLite store when its file fails: full, damaged, deleted.

Real files, real faults: ``PRAGMA max_page_count`` fills the "disk", bytes
overwritten on a closed file damage a page, an unlink deletes the file under
an open store. Every write must end with a result or a ``StoreError`` naming
what failed and the fix: nothing hangs (each test bounds its waits).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import legato
from legato.store import NewWorkflow, SqliteStore, StepRecord
from legato.store._sqlite_file import CHECK_EVERY

BIG = b"x" * 200_000  # needs ~50 new pages


@pytest.fixture(params=["normal", "full"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new file; ``full`` commits through the writer thread, ``normal`` inline."""
    return f"sqlite:///{tmp_path / 'legato.db'}?synchronous={request.param}"


@pytest.fixture
async def store(url: str) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(url)
    await s.open()
    yield s
    await s.close()


def step(position: str, value: bytes = b"v") -> StepRecord:
    return StepRecord(position, "step", "s", True, value, time.time())


def running(wid: str) -> NewWorkflow:
    return NewWorkflow(wid, "wf", b"input", "A", time.time() + 600)


def writer(store: SqliteStore) -> sqlite3.Connection:
    """The store's own writer connection: ``max_page_count`` is a per-connection limit."""
    conn = store._writer
    assert conn is not None
    return conn


async def positions(url: str, wid: str) -> list[str]:
    reopened = SqliteStore(url)
    await reopened.open()
    try:
        return sorted(s.position for s in await reopened.history(wid))
    finally:
        await reopened.close()


# -- a full disk -------------------------------------------------------------------------


async def test_a_full_disk_fails_each_write_with_a_store_error_then_recovers(store, url):
    for wid in ("a", "b", "c"):
        assert await store.create(running(wid)) is None
        assert await store.append(wid, "A", step("1"))
    (pages,) = writer(store).execute("PRAGMA page_count").fetchone()
    writer(store).execute(f"PRAGMA max_page_count = {pages}")
    async with asyncio.timeout(10):
        # one group commit: every waiter gets the error, none is left pending
        outcomes = await asyncio.gather(
            *(store.append(wid, "A", step("2", BIG)) for wid in ("a", "b", "c")),
            store.finish("a", "A", "succeeded", BIG, None), return_exceptions=True)
    for outcome in outcomes:
        assert isinstance(outcome, legato.StoreError), outcome
        assert isinstance(outcome.__cause__, sqlite3.OperationalError)
    assert "legato.db (database or disk is full): the disk" in str(outcomes[0])
    assert "Free disk space, then retry" in str(outcomes[0])
    assert "record a checkpoint" in str(outcomes[0])
    assert "finish workflow 'a'" in str(outcomes[3])

    writer(store).execute("PRAGMA max_page_count = 1073741823")  # space freed
    async with asyncio.timeout(10):
        assert await store.append("a", "A", step("2", BIG))
        assert await store.finish("a", "A", "succeeded", b"done", None)
    assert await positions(url, "a") == ["1", "2"]
    assert await positions(url, "b") == ["1"]  # committed before the disk filled: kept


# -- a damaged file ---------------------------------------------------------------------


def damage(path: Path, table: str) -> None:
    """Overwrite the root page of ``table`` in the closed database at ``path``."""
    with sqlite3.connect(path) as conn:
        (root,) = conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()
        (size,) = conn.execute("PRAGMA page_size").fetchone()
    conn.close()
    with path.open("r+b") as f:
        f.seek((root - 1) * size)
        f.write(b"\xff" * size)


async def test_a_damaged_page_is_a_store_error_not_a_hang(url, tmp_path):
    path = tmp_path / "legato.db"
    store = SqliteStore(url)
    await store.open()
    assert await store.create(running("w1")) is None
    await store.close()
    damage(path, "workflows")

    await store.open()
    try:
        async with asyncio.timeout(10):
            with pytest.raises(legato.StoreError, match="disk image is malformed") as caught:
                await store.create(running("w2"))
            with pytest.raises(legato.StoreError, match="the file is damaged"):
                await store.append("w1", "A", step("1"))
    finally:
        await store.close()
    message = str(caught.value)
    assert str(path) in message and "restore it from a backup" in message
    assert isinstance(caught.value.__cause__, sqlite3.DatabaseError)


@legato.workflow(name="faults-nothing")
async def nothing() -> None:
    return None


async def test_rt_start_on_a_damaged_file_raises_instead_of_hanging(tmp_path):
    path = tmp_path / "legato.db"
    async with legato.Runtime(str(path)) as rt:
        await rt.run(nothing, id="before")
    damage(path, "workflows")
    async with asyncio.timeout(10):
        with pytest.raises(legato.StoreError, match="malformed"):
            async with legato.Runtime(str(path)) as rt:
                await rt.start(nothing, id="after")


# -- a deleted file ---------------------------------------------------------------------


@pytest.mark.parametrize("replaced", [False, True], ids=["deleted", "replaced"])
async def test_a_file_deleted_under_an_open_store_stops_the_writes(store, tmp_path, replaced):
    path = tmp_path / "legato.db"
    assert await store.create(running("w1")) is None
    assert await store.append("w1", "A", step("1"))
    for name in ("legato.db", "legato.db-wal"):
        (tmp_path / name).unlink(missing_ok=True)
    if replaced:  # another file at the same path (a restore, a second deployment)
        sqlite3.connect(path).close()
    await asyncio.sleep(CHECK_EVERY)  # the check's period: the next commit checks
    async with asyncio.timeout(10):
        for attempt in range(2):  # and every write after it fails the same way
            with pytest.raises(legato.StoreError) as caught:
                await store.append("w1", "A", step(f"{2 + attempt}"))
            assert f"the database file {path} was deleted or replaced" in str(caught.value)
            assert "restore the file from a backup" in str(caught.value)
