"""Run every benchmark: ``make bench``. Prints tables and writes bench/results.json."""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import bench_compose
import bench_durable
import bench_flow
import bench_gc
import bench_keys
import bench_otel
import bench_pg_cpu
import bench_pg_trips
import bench_postgres
import bench_queue
import bench_scale
import bench_streams
import bench_waiting
from table import print_table


def flow_rows() -> list[dict[str, Any]]:
    return [
        {"bench": f"{r['primitive']}, {r['branches']} branches", "value": r["us_per_future"],
         "unit": "µs/future", "baseline": r["baseline_us_per_future"],
         "baseline_name": r["baseline"], "ratio": r["ratio"],
         "target": f"ratio ≤ {r['target']}", "ok": r["ok"]}
        for r in bench_flow.run()
    ]


def main() -> None:
    results: dict[str, Any] = {"python": platform.python_version(),
                               "machine": platform.machine()}
    for key, title, bench in [
        ("durable", "durable engine (SQLite, synchronous=NORMAL)", bench_durable.run),
        ("waiting", "waiting (SQLite)", bench_waiting.run),
        ("queue", "queues (SQLite)", bench_queue.run),
        ("keys", "per-key concurrency (SQLite)", bench_keys.run),
        ("scale", "cost as waiting work grows (SQLite)", bench_scale.run),
        ("postgres", "PostgreSQL (news-driven workers) vs SQLite", bench_postgres.run),
        ("pg_trips", "PostgreSQL round trips vs raw asyncpg", bench_pg_trips.run),
        ("pg_cpu", "PostgreSQL: CPU per step as worker processes are added", bench_pg_cpu.run),
        ("gc", "garbage collection as fan-outs grow", bench_gc.run),
        ("flow", "primitives vs asyncio.gather / asyncio.wait (outside workflows)",
         flow_rows),
        ("compose", "composition: Graph vs asyncio.gather and durable steps", bench_compose.run),
        ("otel", "observing (legato.otel) vs off, sequential durable steps (SQLite)",
         bench_otel.run),
        ("streams", "streams: a workflow writes, a client in another process reads",
         bench_streams.run),
    ]:
        results[key] = bench()
        print_table(title, results[key])
    out = Path(__file__).parent / "results.json"
    out.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nJSON: {out}")


if __name__ == "__main__":
    main()
