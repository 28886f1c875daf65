"""Beluga's orchestration concepts (chains, graphs, workflows, worker pools) with legato.

Run it: ``python examples/beluga_orchestration.py`` (it writes ./beluga.db).
Every example of the seed document is also a test: tests/compose/test_compose_beluga.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

import legato


async def fetch(url: str) -> str:
    await asyncio.sleep(0.01)  # real I/O goes here
    return f"<page of {url}>"


async def summarize(page: str) -> str:
    return f"summary of {page}"


async def keywords(page: str) -> list[str]:
    return page.strip("<>").split()[-2:]


async def report(parts: dict[str, Any]) -> str:
    return f"{parts['summarize']} / keywords {parts['keywords']}"


def research_graph() -> legato.Graph:
    graph = legato.Graph("research")
    graph.add_node("fetch", fetch)
    graph.add_node("summarize", summarize)
    graph.add_node("keywords", keywords)
    graph.add_node("report", report)
    graph.add_edge("fetch", "summarize")   # summarize depends on fetch
    graph.add_edge("fetch", "keywords")    # keywords too: the two run in parallel
    graph.add_edge("summarize", "report")
    graph.add_edge("keywords", "report")
    graph.set_entry(["fetch"])
    graph.set_finish(["report"])
    return graph.compile()


@legato.workflow(name="beluga_research")
async def research(url: str) -> str:
    # Inside a workflow every node is a durable step: a crash resumes mid-graph.
    result: str = await research_graph().invoke(url)
    return result


async def main() -> None:
    # Chains: NewChain(steps, WithChainTimeout(30), WithChainRetries(3)) and chain.Invoke
    chain = legato.Chain([fetch, summarize], timeout=30, retries=3)
    print("chain:", await chain.invoke("example.com"))

    # Chain with memory
    memory = legato.Memory()

    async def remember(text: str, memory: legato.Memory) -> int:
        memory.append(text)
        return len(memory)

    chatty = legato.Chain([summarize, remember], memory=memory)
    await chatty.invoke("one")
    print("memory after two turns:", await chatty.invoke("two"), "messages")

    # Graphs, drawn
    print(research_graph().to_mermaid())

    # Workflows: Execute -> (workflow id, run id), GetResult
    async with legato.Runtime("beluga.db") as rt:
        handle = await rt.start(research, "example.com", id="research-example.com")
        run_id = (await rt.get(handle.id)).run_id
        print("workflow:", handle.id, "run", run_id[:8], "->", await handle.result())

    # Worker pools: NewEnhancedScheduler(10); Start(); defer Stop()
    async with legato.Pool(10) as pool:
        pages = await pool.map(fetch, [f"site-{i}.example" for i in range(25)])
    print("pool fetched", len(pages), "pages")


if __name__ == "__main__":
    asyncio.run(main())
