"""(v) PostgreSQL: CPU per step as worker processes are added (issue 19).

1, 2 and 4 real worker processes (``python -m legato worker bench_pg_cpu``)
drain the same backlog: 2,000 workflows of 10 trivial steps, all due at one
moment a few seconds after they are stored. CPU is read from
``/proc/<pid>/stat`` (user + system) of the worker processes and of every
PostgreSQL server process, from just before that moment to the last finish,
so process start-up and the inserts don't count; the finish is watched by
one count every 50 ms, not by a client reading each result. The baseline is
the same figure with one worker process, in the same run: more workers
should split the work, not add to it. Each step returns its process id, so
the split of the backlog is counted too (the smallest share against an even
one).

Beside it, the same ratio for raw asyncpg: 20,000 autocommit INSERTs split
across 1, 2 and 4 processes. On a machine with fewer cores than processes
(this one has two) that ratio is what crowding alone costs: context
switches, caches, client and server processes taking turns. The last row
divides legato's 4-vs-1 ratio by raw asyncpg's: the growth that is
legato's own.

Skips, saying so, when no PostgreSQL answers or ``/proc`` is missing.
Run with ``python bench/bench_pg_cpu.py``.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import legato

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from bench_postgres import _drop, _pg_base, _stop  # noqa: E402

BACKLOG = 2_000
STEPS = 10
DUE_IN = 6.0  # seconds: the inserts end, and the workers sleep, before any row is due
_TICK = os.sysconf("SC_CLK_TCK")
PAYLOAD = b'{"value": "a trivial step result, about a hundred bytes of JSON payload here"}'


@legato.step
async def where(i: int) -> int:
    return os.getpid()


@legato.workflow(name="bench_cpu_ten")
async def ten_here(n: int) -> int:
    pid = 0
    for i in range(STEPS):
        pid = await where(i)
    return pid


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` so far, from ``/proc``; 0 for a process gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime


def server_pids() -> list[int]:
    """Every PostgreSQL server process on this machine (the server is local here)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _server_cpu() -> dict[int, float]:
    return {pid: cpu_seconds(pid) for pid in server_pids()}


async def _all_finished(url: str, procs: Sequence[asyncio.subprocess.Process]) -> None:
    """Until the whole backlog has finished, read by one count every 50 ms.

    Not by awaiting the handles: a client waiting on 2,000 results reads each
    row as its news comes, server CPU that would count as the workers'.
    """
    import asyncpg

    base, schema = url.rsplit("schema=", 1)
    count = f"SELECT count(*) FROM \"{schema}\".workflows WHERE status = 'succeeded'"
    conn = await asyncpg.connect(base.rstrip("?&"))
    try:
        await _until(lambda: conn.fetchval(count), BACKLOG, procs)
    finally:
        await conn.close()


async def _until(read: Callable[[], Awaitable[int]], at_least: int,
                 procs: Sequence[asyncio.subprocess.Process] = ()) -> None:
    """Poll ``read`` every 50 ms until it gives ``at_least`` (what is polled has no news).

    Fails when one of ``procs`` (the workers doing the work) has exited: the
    count would never be reached.
    """
    while True:
        if await read() >= at_least:
            return
        for p in procs:
            if p.returncode is not None:
                raise RuntimeError(
                    f"a worker process exited (code {p.returncode}) before the backlog was "
                    "drained; run `python -m legato worker bench_pg_cpu --store URL` "
                    "from bench/ to see why")
        await asyncio.sleep(0.05)


async def drain(url: str, workers: int) -> dict[str, Any]:
    """CPU per step (workers, server) and the split, ``workers`` processes draining the backlog."""
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(BENCH), os.environ.get("PYTHONPATH")]))}
    procs = [await asyncio.create_subprocess_exec(
        sys.executable, "-m", "legato", "worker", "bench_pg_cpu", "--store", url,
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        for _ in range(workers)]
    try:
        async with legato.Runtime(url, worker=False) as client:
            async def serving() -> int:
                return len(await client.workers())

            await _until(serving, workers, procs)  # each one up and serving
            due = time.time() + DUE_IN  # all due at once: a backlog, not a trickle
            handles = [await client.start(ten_here, i, delay=max(0.0, due - time.time()))
                       for i in range(BACKLOG)]
            if time.time() > due - 0.5:
                raise RuntimeError("the backlog took longer to store than its delay")
            await asyncio.sleep(max(0.0, due - 0.5 - time.time()))  # the workers idle
            workers_before = [cpu_seconds(p.pid) for p in procs]
            server_before = _server_cpu()
            await _all_finished(url, procs)
            workers_cpu = sum(cpu_seconds(p.pid) for p in procs) - sum(workers_before)
            server_after = _server_cpu()
            pids = Counter(await asyncio.gather(*(h.result() for h in handles)))
    finally:
        await _stop(procs)
    server_cpu = sum(t - server_before.get(pid, 0.0) for pid, t in server_after.items())
    steps = BACKLOG * STEPS
    return {"worker_us": workers_cpu / steps * 1e6, "server_us": server_cpu / steps * 1e6,
            "smallest_share": min(pids.get(p.pid, 0) for p in procs) / (BACKLOG / workers)}


async def raw_inserts(base: str, processes: int) -> float:
    """CPU per INSERT (clients + server), ``BACKLOG * STEPS`` of them over ``processes``."""
    import asyncpg

    table = f"legato_bench_cpu_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(base)
    await conn.execute(f"CREATE TABLE {table} (id bigserial PRIMARY KEY, value bytea)")
    procs = [await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--raw", base, table, str(BACKLOG * STEPS // processes),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        for _ in range(processes)]
    try:
        for proc in procs:
            assert proc.stdout is not None
            await proc.stdout.readline()  # "ready": connected
        server_before = _server_cpu()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
        clients = 0.0
        for proc in procs:
            assert proc.stdout is not None
            clients += float(await proc.stdout.readline())  # its CPU for the inserts
        server_after = _server_cpu()
    finally:
        for proc in procs:
            if proc.stdin is not None:
                proc.stdin.close()
            await proc.wait()
        await conn.execute(f"DROP TABLE {table}")
        await conn.close()
    server = sum(t - server_before.get(pid, 0.0) for pid, t in server_after.items())
    return (clients + server) / (BACKLOG * STEPS) * 1e6


async def _raw_client(base: str, table: str, n: int) -> None:
    """One raw client: connect, say so, on "go" INSERT ``n`` rows, print its CPU for them."""
    import asyncpg

    conn = await asyncpg.connect(base)
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    begin = time.process_time()
    for _ in range(n):
        await conn.execute(f"INSERT INTO {table} (value) VALUES ($1)", PAYLOAD)
    print(time.process_time() - begin, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # until closed
    await conn.close()


async def _run() -> list[dict[str, Any]]:
    base = await _pg_base()
    if base is None:
        return []
    if not os.path.exists("/proc/self/stat"):  # noqa: ASYNC240 (one stat, before any work)
        print("PostgreSQL CPU benchmark skipped: no /proc to read CPU time from")
        return []
    sep = "&" if "?" in base else "?"
    results, raw = {}, {}
    for workers in (1, 2, 4):
        url = f"{base}{sep}schema=legato_bench_{uuid.uuid4().hex[:8]}"
        try:
            results[workers] = await drain(url, workers)
        finally:
            await _drop(base, url)
        raw[workers] = await raw_inserts(base, workers)
    one = results[1]["worker_us"] + results[1]["server_us"]
    rows = []
    for workers, r in results.items():
        total = r["worker_us"] + r["server_us"]
        plural = "es" if workers > 1 else ""
        rows.append({
            "bench": f"(v) CPU per step, {workers} worker process{plural}"
                     f" (workers {r['worker_us']:.0f} + server {r['server_us']:.0f} µs;"
                     f" smallest share {r['smallest_share']:.2f} of even)",
            "value": total, "unit": "µs/step", "baseline": one,
            "baseline_name": "same, 1 worker process", "ratio": total / one,
            "target": "ratio ≤ 1.2, share ≥ 0.8",
            "ok": total / one <= 1.2 and r["smallest_share"] >= 0.8})
        rows.append({
            "bench": f"(v) raw asyncpg INSERT, {workers} process{plural}",
            "value": raw[workers], "unit": "µs/insert", "baseline": raw[1],
            "baseline_name": "same, 1 process", "ratio": raw[workers] / raw[1],
            "target": "-", "ok": True})
    # The machine's share of the growth, taken out: legato's 4-vs-1 ratio over raw
    # asyncpg's, both measured in this run on the same cores.
    four = (results[4]["worker_us"] + results[4]["server_us"]) / one
    rows.append({
        "bench": "(v) CPU per step, 4 vs 1 worker processes, over raw asyncpg's 4 vs 1",
        "value": four, "unit": "x", "baseline": raw[4] / raw[1],
        "baseline_name": "raw INSERT, 4 vs 1 process", "ratio": four / (raw[4] / raw[1]),
        "target": "ratio ≤ 1.2", "ok": four / (raw[4] / raw[1]) <= 1.2})
    return rows


def run() -> list[dict[str, Any]]:
    """Run the CPU-per-step benchmark; ``[]`` when no server answers."""
    return asyncio.run(_run())


if __name__ == "__main__" and sys.argv[1:2] == ["--raw"]:
    asyncio.run(_raw_client(sys.argv[2], sys.argv[3], int(sys.argv[4])))
elif __name__ == "__main__":
    from table import print_table

    print_table("PostgreSQL: CPU per step as worker processes are added", run())
