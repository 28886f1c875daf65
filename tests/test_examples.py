"""The examples in examples/ run as they are (the README's demo included)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.py"))


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.stem for e in EXAMPLES])
def test_example_runs(example: Path, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-X", "dev", str(example)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip()


def test_the_demo_shows_the_recorded_result_the_second_time(tmp_path: Path) -> None:
    demo = Path(__file__).parent.parent / "examples" / "demo.py"
    first, second = (subprocess.run([sys.executable, str(demo)], cwd=tmp_path,
                                    capture_output=True, text=True, timeout=60)
                     for _ in range(2))
    assert "searching flights" in first.stdout
    assert "searching flights" not in second.stdout and "nothing ran again" in second.stdout
    result = [line for line in first.stdout.splitlines() if "result:" in line]
    assert result and result[0] in second.stdout
