"""SIGKILL a worker in the middle of a 6-node graph; recovery runs no finished node again."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import legato

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

import compose_child  # noqa: E402, F401  (registers the workflow for the recovering runtime)


async def test_sigkill_mid_graph_resumes_without_running_finished_nodes(
        db, tmp_path, child, monkeypatch):
    log = tmp_path / "ran.log"
    log.touch()
    monkeypatch.setenv("LEGATO_TEST_LOG", str(log))  # for the recovering runtime in this process
    monkeypatch.delenv("LEGATO_TEST_HANG_AT", raising=False)
    worker = child(db, "six-1", script=HERE / "compose_child.py",
                   env={"LEGATO_TEST_LOG": str(log), "LEGATO_TEST_HANG_AT": "E"})
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
