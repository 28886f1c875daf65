"""``legato export`` and ``legato replay``: a real store, real processes, a changed module."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from legato.cli import main

WORKFLOWS_V1 = '''
import legato

@legato.step
async def reserve(item: str) -> str:
    return "R-" + item

@legato.step
async def charge(ref: str) -> int:
    return 42

@legato.workflow(name="cli_order")
async def order(item: str) -> dict:
    ref = await reserve(item)
    return {"ref": ref, "paid": await charge(ref)}
'''

# a step inserted at position 2: old histories no longer replay
WORKFLOWS_V2 = WORKFLOWS_V1.replace(
    '    return {"ref": ref, "paid": await charge(ref)}',
    '    await reserve("extra")\n    return {"ref": ref, "paid": await charge(ref)}')


def cli(app_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "legato", *args], capture_output=True,
                          text=True, timeout=60, cwd=app_dir,
                          env={**os.environ, "PYTHONPATH": str(app_dir)})


def test_export_then_replay_from_the_store_and_from_files(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "shop.py").write_text(WORKFLOWS_V1)
    db = tmp_path / "shop.db"
    done = subprocess.run([sys.executable, "-c", (
        "import legato, shop\n"
        f"for i in range(3): legato.run(shop.order, f'book-{{i}}', store={str(db)!r}, "
        "id=f'order-{i}')")], cwd=app, env={**os.environ, "PYTHONPATH": str(app)},
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr

    exported = cli(app, "export", "order-1", "--store", str(db))
    assert exported.returncode == 0, exported.stderr
    doc = json.loads(exported.stdout)
    assert (doc["name"], doc["status"], doc["input"]) == (
        "cli_order", "succeeded", {"args": ["book-1"], "kwargs": {}})
    assert [(r["position"], r["name"]) for r in doc["records"]] == [("1", "reserve"),
                                                                  ("2", "charge")]
    golden = tmp_path / "order-1.json"
    golden.write_text(exported.stdout)

    ok = cli(app, "replay", "--app", "shop", "--store", str(db), "--all", "--name", "cli_order",
             "--file", str(golden))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.count("ok ") == 4 and "4 of 4 histories replay" in ok.stdout

    (app / "shop.py").write_text(WORKFLOWS_V2)
    broken = cli(app, "replay", "--app", "shop", "--file", str(golden), "--id", "order-2",
                 "--store", str(db))
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert broken.stdout.count("FAILED") == 2 and "0 of 2 histories replay" in broken.stdout
    assert ("diverges at position 2: the history recorded step 'charge'; the code now does "
            "step 'reserve'") in broken.stdout
    assert 'legato.patched("add-reserve")' in broken.stdout


def test_replay_usage_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "cli_shop.py").write_text(WORKFLOWS_V1)
    monkeypatch.chdir(tmp_path)  # the commands import --app modules from here
    assert main(["replay", "--app", "cli_shop"]) == 2  # which histories?
    assert main(["replay", "--app", "cli_shop", "--all"]) == 2  # no --name
    assert main(["replay", "--app", "nowhere", "--id", "x"]) == 2
    assert main(["export", "order-1", "--store", str(tmp_path / "none.db")]) == 1
    assert "no legato store" in capsys.readouterr().err

    doc = {"format": "legato-history/1", "id": "x", "name": "elsewhere", "status": "running",
           "input": {"args": [], "kwargs": {}}, "records": []}
    (tmp_path / "x.json").write_text(json.dumps(doc))
    assert main(["replay", "--app", "cli_shop", "--file", str(tmp_path / "x.json")]) == 1
    assert "no workflow named 'elsewhere'" in capsys.readouterr().err
