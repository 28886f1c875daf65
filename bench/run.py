"""Run every benchmark: ``make bench``. Prints tables and writes bench/results.json."""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import bench_durable
from table import print_table


def main() -> None:
    results = {"python": platform.python_version(), "machine": platform.machine()}
    durable = bench_durable.run()
    print_table("durable engine (SQLite, synchronous=NORMAL)", durable)
    results["durable"] = durable  # type: ignore[assignment]
    try:
        import bench_flow
    except ImportError:
        pass
    else:
        flow = bench_flow.run()
        print_table("primitives vs asyncio (outside workflows)", flow)
        results["flow"] = flow  # type: ignore[assignment]
    out = Path(__file__).parent / "results.json"
    out.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nJSON: {out}")


if __name__ == "__main__":
    main()
