"""`python -m bench mcp_modes`: an MCP `tools/call` over streamable HTTP against a REST call
of the same tool, for each `/mcp` mode, with bare FastMCP (same transport settings) beside.

Every row uses one plain keep-alive httpx client posting JSON-RPC as a handshake-era client
does (`initialize`, then calls carrying the session id when the mode has one), the client
the REST row uses too: a ratio is what the tier costs, not what a client library costs
(`bench.mcp` measures FastMCP's client). Each MCP call alternates with a REST call, so a
busy neighbour weighs on both alike; the ratio is of those medians.

Bars, on CPU time (client, server and loop share the process; a neighbour's load shows in
wall time only): each mode ≤ 2x REST (issue #13 §5), and stateful (the default, SSE) no
worse than bare FastMCP in the same mode (≤ 1.3x, each against its own REST pair).
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from bench.common import Sample, print_table, verdict
from bench.mcp import TOOLS, _bare_fastmcp
from bench.tiers import _fresh_environment, _served, _Workload

N = 300
REST_BAR = 2.0
BARE_BAR = 1.3
MODES = {"stateful": False, "stateless": True}
"""Mode name → stateless; a stateless `/mcp` answers JSON, a stateful one SSE."""
VERSION = "2025-06-18"
INIT = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {
        "protocolVersion": VERSION,
        "capabilities": {},
        "clientInfo": {"name": "bench", "version": "1"},
    },
}


@asynccontextmanager
async def _mcp_caller(
    url: str, key: str | None, work: _Workload
) -> AsyncIterator[Callable[[str], Awaitable[None]]]:
    """A `tools/call` poster on an initialized connection to `url`."""
    import httpx

    headers = {"Accept": "application/json, text/event-stream"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    async with httpx.AsyncClient(headers=headers) as client:
        opened = await client.post(url, json=INIT)
        assert opened.status_code == 200, opened.text
        if session := opened.headers.get("mcp-session-id"):
            client.headers["Mcp-Session-Id"] = session
        client.headers["Mcp-Protocol-Version"] = VERSION
        done = await client.post(
            url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}
        )
        assert done.status_code == 202, done.text

        async def call(tool: str) -> None:
            params = {"name": tool, "arguments": work.args(tool)}
            message = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}
            response = await client.post(url, json=message)
            assert response.status_code == 200 and b'"isError":false' in response.content, (
                response.text
            )

        yield call


@asynccontextmanager
async def _rest_caller(
    base: str, key: str, work: _Workload
) -> AsyncIterator[Callable[[str], Awaitable[None]]]:
    import httpx

    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers) as client:

        async def call(tool: str) -> None:
            response = await client.post(f"/v1/tools/{tool}", json=work.args(tool))
            assert response.status_code == 200, response.text

        yield call


@dataclasses.dataclass(frozen=True)
class Pair:
    """An MCP call and the REST call beside it: wall and CPU time of each."""

    mcp: Sample
    rest: Sample
    mcp_cpu: Sample
    rest_cpu: Sample


async def _pair(
    names: tuple[str, str], mcp: Callable[[str], Awaitable[None]], rest: Any, tool: str
) -> Pair:
    """Alternated calls; CPU time too (the process's: client, server and loop), which a
    busy neighbour does not inflate as it does wall time."""
    for _ in range(50):
        await mcp(tool)
        await rest(tool)
    walls: tuple[list[float], list[float]] = ([], [])
    cpus: tuple[list[float], list[float]] = ([], [])
    for _ in range(N):
        for call, wall, cpu in ((mcp, walls[0], cpus[0]), (rest, walls[1], cpus[1])):
            start, start_cpu = time.perf_counter(), time.process_time()
            await call(tool)
            cpu.append(time.process_time() - start_cpu)
            wall.append(time.perf_counter() - start)
    return Pair(
        Sample(names[0], walls[0]),
        Sample(names[1], walls[1]),
        Sample(names[0], cpus[0]),
        Sample(names[1], cpus[1]),
    )


async def run() -> dict[str, Pair]:
    """For each mode and tool: (ours, REST) and (bare FastMCP, REST), alternated pairs."""
    from daemons.common.keystore import KeyStore
    from daemons.common.settings import Settings
    from servers.assembly import build_registry
    from servers.supervisor import serve

    _fresh_environment()
    settings = Settings.from_env()
    keystore = KeyStore(settings)
    owner = keystore.owner()  # creates the admin key on a fresh home
    key = settings.admin_key_file.read_text().strip()
    registry = build_registry(settings, keystore=keystore)
    work = _Workload(registry, owner)
    pairs: dict[str, Pair] = {}
    async with registry:
        for mode, stateless in MODES.items():
            served = dataclasses.replace(settings, mcp_stateless=stateless)
            bare_app = _bare_fastmcp(work).http_app(
                path="/mcp/", stateless_http=stateless, json_response=stateless
            )
            async with AsyncExitStack() as stack:
                base = await stack.enter_async_context(serve(registry, served))
                bare_base = await stack.enter_async_context(_served(bare_app))
                ours = await stack.enter_async_context(_mcp_caller(f"{base}/mcp/", key, work))
                bare = await stack.enter_async_context(_mcp_caller(f"{bare_base}/mcp/", None, work))
                rest = await stack.enter_async_context(_rest_caller(base, key, work))
                for tool in TOOLS:
                    rows = (f"mcp-{mode} {tool}", f"rest (beside mcp-{mode}) {tool}")
                    pairs[rows[0]] = await _pair(rows, ours, rest, tool)
                    rows = (f"bare-fastmcp-{mode} {tool}", f"rest (beside bare-{mode}) {tool}")
                    pairs[rows[0]] = await _pair(rows, bare, rest, tool)
    return pairs


def report(pairs: dict[str, Pair]) -> bool:
    rows = []
    for pair in pairs.values():
        for wall, cpu, cpu_ratio in (
            (pair.rest, pair.rest_cpu, ""),
            (pair.mcp, pair.mcp_cpu, f"{_ratio(pair):.2f}x"),
        ):
            rows.append(
                [
                    wall.name,
                    f"{wall.median_us:,.0f}",
                    f"{wall.p99_us:,.0f}",
                    f"{cpu.median_us:,.0f}",
                ]
            )
            wall_ratio = f"{wall.median_us / pair.rest.median_us:.2f}x" if cpu_ratio else ""
            rows[-1] += [wall_ratio, cpu_ratio]
    bars = []
    for tool in TOOLS:
        stateless = _ratio(pairs[f"mcp-stateless {tool}"])
        bars.append(
            (
                f"stateless JSON {tool} ≤ {REST_BAR}x REST",
                f"{stateless:.2f}x",
                stateless <= REST_BAR,
            )
        )
        stateful = _ratio(pairs[f"mcp-stateful {tool}"])
        bars.append(
            (f"stateful {tool} ≤ {REST_BAR}x REST", f"{stateful:.2f}x", stateful <= REST_BAR)
        )
        versus = stateful / _ratio(pairs[f"bare-fastmcp-stateful {tool}"])
        bars.append(
            (f"stateful {tool} ≤ {BARE_BAR}x bare FastMCP", f"{versus:.2f}x", versus <= BARE_BAR)
        )
    print_table(
        "MCP tools/call per /mcp mode, each beside a REST call (µs; ratios to that REST call)",
        ["measurement", "median µs", "p99 µs", "cpu µs", "vs REST", "cpu vs REST"],
        rows,
    )
    print_table(
        "MCP modes: bars (on CPU time)",
        ["bar", "measured", "verdict"],
        [[b, m, verdict(ok)] for b, m, ok in bars],
    )
    return all(ok for _, _, ok in bars)


def _ratio(pair: Pair) -> float:
    """CPU per MCP call over CPU per REST call."""
    return pair.mcp_cpu.median_us / pair.rest_cpu.median_us


def main() -> int:
    return 0 if report(asyncio.run(run())) else 1


if __name__ == "__main__":
    sys.exit(main())
