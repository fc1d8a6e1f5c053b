"""Per-tier latency of one read tool and one write tool, against in-run baselines.

Rows: the bare handler, `Registry.invoke`, HTTP (keep-alive client) and CLI cold start;
baselines: a bare Starlette endpoint calling the same handler, and `python -c pass`. The
MCP tier against bare FastMCP is `bench.mcp`.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from bench.common import (
    Sample,
    measure,
    measure_async,
    measure_pair_async,
    print_table,
    verdict,
)

N_FAST = 3000
N_WIRE = 600
N_COLD = 5


def _fresh_environment() -> Path:
    home = Path(tempfile.mkdtemp(prefix="prvng-bench-"))
    os.environ["PRVNG_HOME"] = str(home / "home")
    os.environ["XDG_CACHE_HOME"] = str(home / "cache")
    os.environ["PRVNG_SURREAL_URL"] = "mem://"
    os.environ["PRVNG_RATE_LIMITS"] = "off"  # the tiers' cost, not the limits (bench.authz)
    for var in ("PRVNG_URL", "PRVNG_API_KEY", "PRVNG_RATE_LIMIT"):
        os.environ.pop(var, None)
    return home


@asynccontextmanager
async def _served(app: Any) -> AsyncIterator[str]:
    """Serve any ASGI app on 127.0.0.1:0 in this loop, the same way the platform does."""
    from daemons.common.asgi import AsgiServer

    server = AsgiServer(app)
    await server.start()
    try:
        yield server.url
    finally:
        await server.stop()


PROBES = ("bench.read", "bench.write")


def _add_probe_tools(registry: Any) -> None:
    """Two I/O-free tools (a read and a write) that isolate the pipeline's own cost: with a
    database call in the handler, the embedded engine's threads inflate whatever CPU work
    follows it, the pipeline's included (measured: 16 µs of work shows as ~50 µs)."""
    from registry import Risk, StrictModel, ToolSpec

    class ProbeInput(StrictModel):
        name: str
        labels: dict[str, str] = {}

    class ProbeOutput(StrictModel):
        name: str
        labels: dict[str, str]

    async def handler(args: ProbeInput, ctx: Any) -> ProbeOutput:
        return ProbeOutput(name=args.name, labels=args.labels)

    for name, risk in zip(PROBES, (Risk.READ, Risk.WRITE), strict=True):
        registry.add(
            ToolSpec(
                name=name,
                summary="benchmark probe",
                input_model=ProbeInput,
                output_model=ProbeOutput,
                handler=handler,
                permission="bench:read" if risk is Risk.READ else "bench:write",
                risk=risk,
            )
        )


class _Workload:
    """The two measured tools and how to call their handlers directly."""

    def __init__(self, registry: Any, owner: Any) -> None:
        from registry.context import ToolContext

        self.registry = registry
        self.owner = owner
        self.ctx = ToolContext(owner, "bench", registry.resources, registry.listing)
        self._names = itertools.count()

    def args(self, tool: str) -> dict[str, Any]:
        if tool in PROBES:
            return {"name": "probe", "labels": {"env": "bench"}}
        if tool == "server.register":
            return {"name": f"b-{next(self._names)}", "labels": {"env": "bench"}}
        return {}

    async def bare(self, tool: str) -> dict[str, Any]:
        spec = self.registry.get(tool)
        result = await spec.handler(spec.input_model.model_validate(self.args(tool)), self.ctx)
        dumped: dict[str, Any] = result.model_dump(mode="json")
        return dumped


def _bare_starlette(work: _Workload) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def endpoint(request: Request) -> JSONResponse:
        await request.body()
        return JSONResponse({"ok": True, "data": await work.bare(request.path_params["name"])})

    return Starlette(routes=[Route("/v1/tools/{name}", endpoint, methods=["POST"])])


async def _http_samples(
    label: str, base: str, work: _Workload, tools: list[str], key: str | None
) -> list[Sample]:
    import httpx

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    samples = []
    async with httpx.AsyncClient(base_url=base, headers=headers) as client:
        for tool in tools:

            async def call(tool: str = tool) -> None:
                response = await client.post(f"/v1/tools/{tool}", json=work.args(tool))
                assert response.status_code == 200, response.text

            samples.append(await measure_async(f"{label} {tool}", call, N_WIRE))
    return samples


def _cold_start(argv: list[str], env: dict[str, str]) -> Sample:
    return measure(
        " ".join(Path(a).name if i == 0 else a for i, a in enumerate(argv)),
        lambda: subprocess.run(argv, env=env, check=True, capture_output=True),
        N_COLD,
    )


async def run() -> dict[str, Sample]:
    from daemons.common.keystore import KeyStore
    from daemons.common.settings import Settings
    from servers.assembly import build_registry
    from servers.supervisor import serve

    _fresh_environment()
    settings = Settings.from_env()
    keystore = KeyStore(settings)
    owner = keystore.owner()
    key = settings.admin_key_file.read_text().strip()
    registry = build_registry(settings, keystore=keystore)
    work = _Workload(registry, owner)
    tools = ["platform.info", "server.register"]
    results: dict[str, Sample] = {}

    def keep(samples: list[Sample]) -> None:
        results.update({s.name: s for s in samples})

    _add_probe_tools(registry)
    async with registry:
        for tool in [*PROBES, *tools]:

            async def bare(tool: str = tool) -> None:
                await work.bare(tool)

            async def invoke(tool: str = tool) -> None:
                env = await registry.invoke(tool, work.args(tool), principal=owner)
                assert env.ok, env.error

            keep(
                list(
                    await measure_pair_async(
                        (f"handler {tool}", bare), (f"invoke {tool}", invoke), N_FAST
                    )
                )
            )

        async with _served(_bare_starlette(work)) as base:
            keep(await _http_samples("bare-starlette", base, work, tools, None))
        async with serve(registry, settings) as base:
            keep(await _http_samples("http", base, work, tools, key))

    return results


def cold_starts() -> dict[str, Sample]:
    """CLI start-up, median of a few runs each (the listing cache is warmed first)."""
    env = dict(os.environ)
    prvng = str(Path(sys.executable).with_name("prvng"))
    subprocess.run([prvng, "tools", "list"], env=env, check=True, capture_output=True)
    return {
        "python -c pass": _cold_start([sys.executable, "-c", "pass"], env),
        "prvng tools list": _cold_start([prvng, "tools", "list"], env),
        "prvng --help": _cold_start([prvng, "--help"], env),
        "prvng call platform.info": _cold_start([prvng, "call", "platform.info"], env),
    }


def report(results: dict[str, Sample]) -> bool:
    def row(name: str, baseline: str | None = None) -> list[str]:
        s = results[name]
        ratio = f"{s.median_us / results[baseline].median_us:.2f}x" if baseline else ""
        return [name, f"{s.median_us:,.0f}", f"{s.p99_us:,.0f}", f"{s.per_second:,.0f}", ratio]

    rows = []
    for tool in PROBES:
        rows += [row(f"handler {tool}"), row(f"invoke {tool}", f"handler {tool}")]
    for tool in ("platform.info", "server.register"):
        rows += [
            row(f"handler {tool}"),
            row(f"invoke {tool}", f"handler {tool}"),
            row(f"bare-starlette {tool}"),
            row(f"http {tool}", f"bare-starlette {tool}"),
        ]
    rows += [
        row("python -c pass"),
        row("prvng tools list", "python -c pass"),
        row("prvng --help", "python -c pass"),
        row("prvng call platform.info", "python -c pass"),
    ]
    print_table(
        "Tiers: latency per call (µs) and ratio to the in-run baseline",
        ["measurement", "median µs", "p99 µs", "calls/s", "ratio"],
        rows,
    )

    def median(name: str) -> float:
        return results[name].median_us

    bars = []
    for tool in PROBES:
        overhead = median(f"invoke {tool}") - median(f"handler {tool}")
        bars.append((f"pipeline overhead ({tool}) ≤ 50 µs", f"{overhead:.1f} µs", overhead <= 50))
    for tool in ("platform.info", "server.register"):
        overhead = median(f"invoke {tool}") - median(f"handler {tool}")
        print(f"invoke - handler, {tool} (with its I/O): {overhead:.1f} µs")
        http = median(f"http {tool}") / median(f"bare-starlette {tool}")
        bars.append((f"HTTP {tool} ≤ 1.5x bare Starlette", f"{http:.2f}x", http <= 1.5))
    cold = median("prvng tools list") / median("python -c pass")
    bars.append(("`prvng tools list` ≤ 10x `python -c pass`", f"{cold:.1f}x", cold <= 10))
    print_table(
        "Tiers: bars", ["bar", "measured", "verdict"], [[b, m, verdict(ok)] for b, m, ok in bars]
    )
    return all(ok for _, _, ok in bars)


def main() -> int:
    results = asyncio.run(run())
    results.update(cold_starts())
    return 0 if report(results) else 1


if __name__ == "__main__":
    sys.exit(main())
