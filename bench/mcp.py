"""`python -m bench mcp`: the MCP tier against bare FastMCP, calls alternated in one run,
and the size of its listing.

Both servers are up at once and each call of ours is followed by the same call on a bare
FastMCP tool around the same handler, so a busy neighbour weighs on both alike; the ratio
of medians is the bar (≤ 1.3x). Rows: streamable HTTP (`/mcp` behind the bearer layer and
the gate) and in-memory. The listing row is the admin's `tools/list` in tokens per tool
(4 bytes ≈ 1 token; bar ≤ 300). FastMCP's client speaks the sessionless 2026 revision;
`bench.mcp_modes` measures a handshake-era call per `/mcp` mode against REST.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from bench.common import Sample, measure_pair_async, print_table, verdict
from bench.tiers import _fresh_environment, _served, _Workload

N_WIRE = 400
N_MEMORY = 1000
TOOLS = ("platform.info", "server.register")
BAR = 1.3
TOKENS_BAR = 300
BYTES_PER_TOKEN = 4


def _bare_fastmcp(work: _Workload) -> Any:
    from fastmcp import FastMCP

    bare = FastMCP("bare")

    @bare.tool(name="platform.info")
    async def info() -> dict[str, Any]:
        return await work.bare("platform.info")

    @bare.tool(name="server.register")
    async def register(name: str, labels: dict[str, str]) -> dict[str, Any]:
        return await work.bare("server.register")

    return bare


@asynccontextmanager
async def _client(target: Any, auth: str | None = None) -> AsyncIterator[Any]:
    from fastmcp import Client

    async with Client(target, auth=auth) if auth else Client(target) as client:
        yield client


async def _pairs(
    label: str, ours: Any, bare: Any, work: _Workload, n: int
) -> list[tuple[Sample, Sample]]:
    pairs = []
    for tool in TOOLS:

        async def call_ours(tool: str = tool) -> None:
            assert not (await ours.call_tool(tool, work.args(tool))).is_error

        async def call_bare(tool: str = tool) -> None:
            assert not (await bare.call_tool(tool, work.args(tool))).is_error

        pairs.append(
            await measure_pair_async(
                (f"mcp-{label} {tool}", call_ours), (f"bare-fastmcp-{label} {tool}", call_bare), n
            )
        )
    return pairs


async def _tokens_per_tool(client: Any) -> tuple[int, float]:
    """How many tools the listing has, and its average size per tool in tokens."""
    tools = (await client.session.list_tools()).tools
    size = sum(len(t.model_dump_json(by_alias=True, exclude_none=True)) for t in tools)
    return len(tools), size / len(tools) / BYTES_PER_TOKEN


async def run() -> tuple[list[tuple[Sample, Sample]], tuple[int, float]]:
    from daemons.common.keystore import KeyStore
    from daemons.common.settings import Settings
    from servers.assembly import build_registry
    from servers.mcp import build_mcp
    from servers.supervisor import serve

    _fresh_environment()
    settings = Settings.from_env()
    keystore = KeyStore(settings)
    owner = keystore.owner()
    key = settings.admin_key_file.read_text().strip()
    registry = build_registry(settings, keystore=keystore)
    work = _Workload(registry, owner)
    bare_mcp = _bare_fastmcp(work)
    async with registry, AsyncExitStack() as stack:
        base = await stack.enter_async_context(serve(registry, settings))
        bare_base = await stack.enter_async_context(_served(bare_mcp.http_app(path="/mcp/")))
        ours = await stack.enter_async_context(_client(f"{base}/mcp/", key))
        bare = await stack.enter_async_context(_client(f"{bare_base}/mcp/"))
        listing = await _tokens_per_tool(ours)
        pairs = await _pairs("http", ours, bare, work, N_WIRE)
        ours = await stack.enter_async_context(_client(build_mcp(registry, principal=owner)))
        bare = await stack.enter_async_context(_client(bare_mcp))
        pairs += await _pairs("memory", ours, bare, work, N_MEMORY)
    return pairs, listing


def report(pairs: list[tuple[Sample, Sample]], listing: tuple[int, float]) -> bool:
    rows, bars = [], []
    count, tokens = listing
    bars.append(
        (
            f"admin tools/list ({count} tools) ≤ {TOKENS_BAR} tokens/tool",
            f"{tokens:.0f}",
            tokens <= TOKENS_BAR,
        )
    )
    for ours, bare in pairs:
        ratio = ours.median_us / bare.median_us
        for s in (bare, ours):
            rows.append([s.name, f"{s.median_us:,.0f}", f"{s.p99_us:,.0f}", f"{s.per_second:,.0f}"])
        rows[-1].append(f"{ratio:.2f}x")
        rows[-2].append("")
        if ours.name.startswith("mcp-http"):
            tool = ours.name.split()[-1]
            bars.append((f"MCP HTTP {tool} ≤ {BAR}x bare FastMCP", f"{ratio:.2f}x", ratio <= BAR))
    print_table(
        "MCP: latency per call (µs), ours and bare FastMCP alternated",
        ["measurement", "median µs", "p99 µs", "calls/s", "ratio"],
        rows,
    )
    print_table(
        "MCP: bars", ["bar", "measured", "verdict"], [[b, m, verdict(ok)] for b, m, ok in bars]
    )
    return all(ok for _, _, ok in bars)


def main() -> int:
    return 0 if report(*asyncio.run(run())) else 1


if __name__ == "__main__":
    sys.exit(main())
