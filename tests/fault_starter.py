"""One of several processes starting the same workflow ids at once (``test_fault_suite``).

Usage: ``python fault_starter.py STORE COUNT``. Opens a Runtime with a worker
on STORE, prints ``ready``, waits for ``go`` on stdin, starts ``fault_token``
as ``t0`` … ``t<COUNT-1>`` all at once, waits for every result and prints one
JSON line ``{"pid": …, "results": [...]}``; then keeps serving until ``stop``
(so no run it holds is handed over while the others still wait).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

import legato
from fault_workflows import token


async def main(store: str, count: int) -> None:
    async with legato.Runtime(store, lease=1.0) as rt:
        print("ready", flush=True)
        assert await asyncio.to_thread(sys.stdin.readline) == "go\n"
        handles = await asyncio.gather(*(rt.start(token, f"t{n}", id=f"t{n}")
                                         for n in range(count)))
        results = await asyncio.gather(*(h.result(timeout=60) for h in handles))
        print(json.dumps({"pid": os.getpid(), "results": results}), flush=True)
        assert await asyncio.to_thread(sys.stdin.readline) == "stop\n"


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
