from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from pg_schema import fresh_pg_schema
from worker_process import Child

TESTS = Path(__file__).parent


@pytest.fixture
def log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The file where crash-test step bodies note each time they really run."""
    path = tmp_path / "ran.log"
    path.touch()
    monkeypatch.setenv("LEGATO_TEST_LOG", str(path))
    monkeypatch.delenv("LEGATO_TEST_HANG_AFTER", raising=False)
    return path


@pytest.fixture
def sqlite_db(tmp_path: Path) -> str:
    """A fresh SQLite database file (for tests that need SQLite itself)."""
    return str(tmp_path / "legato.db")


@pytest.fixture(params=["sqlite", "postgres"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh store for ``legato.Runtime(db)``: a SQLite file or a PostgreSQL schema."""
    if request.param == "sqlite":
        yield str(tmp_path / "legato.db")
        return
    async with fresh_pg_schema() as url:
        yield url


@pytest.fixture
def child() -> Iterator[type[Child]]:
    made: list[Child] = []

    class Tracked(Child):
        def __init__(self, *args: str, env: dict[str, str] | None = None,
                     script: Path = TESTS / "crash_child.py") -> None:
            super().__init__(*args, env=env, script=script)
            made.append(self)

    yield Tracked
    for c in made:
        if c.proc.poll() is None:
            c.kill()


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """A fresh PostgreSQL store URL (a new ``?schema=``, dropped afterwards)."""
    async with fresh_pg_schema() as url:
        yield url


@pytest.fixture
def fleet_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "ran.log"
    path.touch()
    monkeypatch.setenv("LEGATO_TEST_LOG", str(path))
    return path
