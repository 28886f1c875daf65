from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from pg_schema import fresh_pg_schema

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


class Child:
    """A real worker process running ``script`` (``tests/crash_child.py``); killed with SIGKILL."""

    def __init__(self, *args: str, env: dict[str, str] | None = None,
                 script: Path = TESTS / "crash_child.py") -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(script), *args],
            env={**os.environ, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def next_line(self, timeout: float = 15.0) -> str:
        """The next line the process prints (steps print their name when they run)."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"worker printed nothing for {timeout} s") from None
        if line is None:
            raise AssertionError("worker exited; it printed:\n" + "\n".join(self.seen))
        self.seen.append(line)
        return line

    def wait_for(self, line: str, timeout: float = 15.0) -> None:
        """Block until the process prints ``line``."""
        deadline = time.monotonic() + timeout
        while self.next_line(max(0.01, deadline - time.monotonic())) != line:
            pass

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


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
