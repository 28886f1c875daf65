"""SIGKILL a worker in the middle of a 6-node graph; recovery runs no finished node again."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

import legato

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

import compose_child  # noqa: E402, F401  (registers the workflow for the recovering runtime)


class Worker:
    """``compose_child.py`` in its own process; its printed lines arrive on a queue."""

    def __init__(self, db: str, workflow_id: str, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "compose_child.py"), db, workflow_id],
            env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, wanted: str, timeout: float = 15.0) -> None:
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no {wanted!r} within {timeout} s: {self.seen}") from None
            if line is None:
                raise AssertionError("the worker exited:\n" + "\n".join(self.seen))
            self.seen.append(line)
            if line == wanted:
                return

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    made: list[Worker] = []
    yield made
    for w in made:
        if w.proc.poll() is None:
            w.kill()


async def test_sigkill_mid_graph_resumes_without_running_finished_nodes(
        db, tmp_path, workers, monkeypatch):
    log = tmp_path / "ran.log"
    log.touch()
    monkeypatch.setenv("LEGATO_TEST_LOG", str(log))  # for the recovering runtime in this process
    monkeypatch.delenv("LEGATO_TEST_HANG_AT", raising=False)
    worker = Worker(db, "six-1", {"LEGATO_TEST_LOG": str(log), "LEGATO_TEST_HANG_AT": "E"})
    workers.append(worker)
    # E starts only once B, C and D are recorded (a node's task ends after its commit).
    worker.wait_for("E")
    worker.kill()
    assert Counter(log.read_text().split()) == {"A": 1, "B": 1, "C": 1, "D": 1, "E": 1}

    async with legato.Runtime(db) as rt:
        result = await rt.handle("six-1").result(timeout=15)
        info = await rt.get("six-1")

    assert result == "F({'D': 'D(A(in))', 'E': \"E({'B': 'B(A(in))', 'C': 'C(A(in))', " \
                     "'D': 'D(A(in))'})\"})"
    ran = Counter(log.read_text().split())
    assert ran == {"A": 1, "B": 1, "C": 1, "D": 1, "E": 2, "F": 1}  # only E, cut off, again
    assert info.status == legato.Status.SUCCEEDED
    assert [(s.position, s.name) for s in info.steps] == [
        (f"1.{i}.1", name) for i, name in enumerate("ABCDEF")]
