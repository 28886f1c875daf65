"""The public API keeps user code's types: ``mypy --strict`` over a sample program."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SAMPLE = Path(__file__).parent / "typing_sample.py"

REJECTED = '''
from typing_sample import report
import legato

async def wrong(rt: legato.Runtime) -> None:
    await rt.start(report, 42, id="r-2")  # topic is a str
'''


@pytest.mark.timeout(300)
def test_mypy_strict_accepts_the_sample_and_rejects_a_wrong_argument(tmp_path):
    (tmp_path / "typing_sample.py").write_text(SAMPLE.read_text())
    (tmp_path / "typing_rejected.py").write_text(REJECTED)
    # one run over both files: the whole package is analysed once
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--config-file", "/dev/null",
         "--cache-dir", str(tmp_path / ".mypy_cache"), "typing_sample.py", "typing_rejected.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=280)
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1, done.stdout
    assert errors[0].startswith(
        'typing_rejected.py:6: error: Argument 1 to "start" of "Runtime" has incompatible type')
