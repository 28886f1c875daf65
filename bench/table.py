"""Printing benchmark rows as a table."""

from __future__ import annotations

from typing import Any


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}" if value < 1000 else f"{value:,.0f}"
    return str(value)


def print_table(title: str, rows: list[dict[str, Any]]) -> None:
    """One line per row: figure, unit, baseline, ratio, target, verdict."""
    print(f"\n## {title}\n")
    header = ["benchmark", "value", "unit", "baseline", "vs", "ratio", "target", "ok"]
    lines = [header] + [
        [r["bench"], _fmt(r["value"]), r["unit"], _fmt(r.get("baseline")),
         r.get("baseline_name", ""), _fmt(r.get("ratio")), r.get("target", ""),
         "yes" if r.get("ok") else "NO"]
        for r in rows
    ]
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    for n, line in enumerate(lines):
        print("  ".join(str(cell).ljust(w) for cell, w in zip(line, widths, strict=True)))
        if n == 0:
            print("  ".join("-" * w for w in widths))
