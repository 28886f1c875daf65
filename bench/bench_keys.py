"""Per-key concurrency: what a claim costs with 10,000 keys, beside an unkeyed queue.

(u) 10,000 pending workflows on a queue, each with a key of its own, on a
    queue with ``key_concurrency=1``; claims of 100 at a time until 2,000 are
    taken, median time per claim, against the same claims on the same
    workflows enqueued without keys on a queue without ``key_concurrency``
    (measured in the same run, on the same kind of file).

Run with ``python bench/bench_keys.py``.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from legato.store import ClaimRequest, NewWorkflow, QueueLimits, SqliteStore

QUEUE = "bench_keys"


async def claim_ms(path: Path, workflows: int, taken: int, *, keyed: bool) -> list[float]:
    """Milliseconds per claim of 100, until ``taken`` of ``workflows`` queued ones are."""
    store = SqliteStore(str(path))
    await store.open()
    try:
        await asyncio.gather(*(store.create(NewWorkflow(
            f"k{i}", "bench_keyed", b"{}", None, 0.0, queue=QUEUE,
            key=f"customer-{i}" if keyed else None)) for i in range(workflows)))
        limits = QueueLimits(QUEUE, key_concurrency=1 if keyed else None)
        samples = []
        for n in range(taken // 100):
            now = time.time()
            began = time.perf_counter()
            claimed = await store.claim(ClaimRequest(
                owner=f"bench#{n}", lease_until=now + 600, real_now=now, durable_now=now,
                limit=100, names=["bench_keyed"], queues=[limits]))
            samples.append((time.perf_counter() - began) * 1e3)
            assert len(claimed) == 100, len(claimed)
        return samples
    finally:
        await store.close()


def run(workflows: int = 10_000, taken: int = 2_000) -> list[dict[str, Any]]:
    """Run the per-key benchmark; return one row."""
    with tempfile.TemporaryDirectory() as tmp:
        plain = asyncio.run(claim_ms(Path(tmp) / "plain.db", workflows, taken, keyed=False))
        keyed = asyncio.run(claim_ms(Path(tmp) / "keyed.db", workflows, taken, keyed=True))
    value, base = statistics.median(keyed), statistics.median(plain)
    return [
        {"bench": f"(u) claim 100 of {workflows:,} queued, one key each, key_concurrency=1",
         "value": value, "unit": "ms p50", "baseline": base,
         "baseline_name": "the same claim on an unkeyed queue, ms p50", "ratio": value / base,
         "target": "ratio ≤ 3", "ok": value / base <= 3},
    ]


if __name__ == "__main__":
    from table import print_table

    print_table("per-key concurrency (SQLite)", run())
