"""Write the golden histories in this directory: ``python tests/golden/regenerate.py``.

Each file is what ``legato export ID`` writes for one run of an example
workflow, in virtual time. ``tests/test_replay.py`` replays every file with
today's code: a change to legato or to the examples that would break the
workflows in flight of an older version fails there. Regenerate only on
purpose (a deliberate, documented break), never to make that test pass.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))

import legato  # noqa: E402
from examples_loader import load_example  # noqa: E402
from legato.testing import History  # noqa: E402

MONDAY = 1894006800.0  # 2030-01-07 09:00 UTC: every run starts there in virtual time


async def record(name: str, workflow: Callable[..., Awaitable[Any]], *args: Any,
                 signals: dict[str, Any] | None = None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with legato.Runtime(Path(tmp) / "golden.db",
                                  clock=legato.VirtualClock(MONDAY)) as rt:
            handle = await rt.start(workflow, *args, id=name)
            for signal, payload in (signals or {}).items():
                await rt.signal(name, signal, payload)
            try:
                await handle.result()
            except Exception as exc:  # a failed run is a history too
                print(f"{name}: failed as recorded: {exc!r}")
            history = await History.from_runtime(rt, name)
    (HERE / f"{name}.json").write_text(history.dumps())
    print(f"{name}: {len(history.records)} records")


async def main() -> None:
    demo, stent = load_example("demo"), load_example("stent_patterns")
    beluga = load_example("beluga_orchestration")
    await record("demo-plan-trip", demo.plan_trip, "Ana", "Lisbon", 500)
    await record("stent-trip-booked", stent.book_trip, {"who": "bo"})
    await record("stent-trip-no-car", stent.book_trip, {"who": "ana", "unavailable": "car"})
    await record("stent-approval", stent.approval_with_timeout,
                 {"id": "expense-2", "approvers": ["ana", "bo"]},
                 signals={"approval": {"approved": True, "approver": "bo"}})
    await record("stent-approval-timeout", stent.approval_with_timeout,
                 {"id": "expense-1", "approvers": ["ana", "bo"]})
    await record("beluga-research", beluga.research, "example.com")


if __name__ == "__main__":
    asyncio.run(main())
