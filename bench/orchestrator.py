"""The orchestrator engine: durable no-op tasks per second, recovery time and memory.

Rows: a chain of 1,000, a fan-out of 1,000 and layered diamonds, every task fsynced into
the journal (group commit) before it is acted on; recovery of a 10,000-task journal (and of
its snapshot); a restart with 1,000 finished workflows against one with 1,000 unfinished
ones; the longest event-loop stall while the API takes a 1 MiB workflow (over the
orchestrator's HTTP API, and as `workflow.submit` through the registry, the way every tier
calls it) or pages a flooded task log; resident memory for 10,000 tasks, in a fresh
subprocess. Baselines in the same run: a bare fsync'd append loop (the disk's limit for
one record at a time), a bare `asyncio.gather` of the same no-op action (the CPU's
limit), a start on an empty journal directory and the loop's stall while idle.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import print_table, verdict
from daemons.common.heap import freeze_startup_heap
from daemons.common.keystore import KeyStore
from daemons.common.settings import PROJECT_ROOT, Settings
from daemons.orchestrator.actions import ActionContext, load_actions
from daemons.orchestrator.durability.journal import encode
from daemons.orchestrator.engine.records import RecordKind, SucceededRecord
from daemons.orchestrator.engine.service import Orchestrator
from daemons.orchestrator.model import WorkflowSpec
from daemons.orchestrator.protocol import OrchestratorHandle
from daemons.orchestrator.serving.api import create_app
from servers.assembly import build_registry

N = 1000
N_RECOVERY = 10_000
N_HISTORY = 1000
"""Workflows (of 10 tasks) behind each restart row."""
EMPTY_LINES = 300_000
ROUNDS = 3
BAR_FANOUT_PER_S = 1000.0
BAR_RECOVERY_S = 2.0
BAR_MEMORY_MIB = 50.0


def _settings(home: Path) -> Settings:
    return Settings(home=home, config_dir=PROJECT_ROOT / "config", cache_dir=home / "cache")


def _noop(task_id: str, *deps: str) -> dict[str, Any]:
    return {"id": task_id, "action": "noop", "depends_on": list(deps)}


def chain(n: int) -> WorkflowSpec:
    tasks = [_noop(f"t{i}", *([f"t{i - 1}"] if i else [])) for i in range(n)]
    return WorkflowSpec.model_validate({"name": "chain", "tasks": tasks})


def fan_out(n: int) -> WorkflowSpec:
    tasks = [_noop("root")] + [_noop(f"t{i}", "root") for i in range(n - 1)]
    return WorkflowSpec.model_validate({"name": "fan-out", "tasks": tasks})


def diamonds(n: int, width: int = 4) -> WorkflowSpec:
    """join0 → (width branches) → join1 → ... : layers of diamonds, about `n` tasks."""
    tasks = [_noop("join0")]
    layer = 0
    while len(tasks) + width + 1 <= n:
        branches = [f"d{layer}b{i}" for i in range(width)]
        tasks += [_noop(b, f"join{layer}") for b in branches]
        tasks.append(_noop(f"join{layer + 1}", *branches))
        layer += 1
    return WorkflowSpec.model_validate({"name": "diamonds", "tasks": tasks})


# ---- baselines ---------------------------------------------------------------------------


def fsync_loop(directory: Path, n: int) -> float:
    """Records per second, each written and fdatasynced on its own."""
    record: SucceededRecord = {
        "s": 1,
        "k": RecordKind.SUCCEEDED,
        "task": "t123",
        "n": 1,
        "at": time.time(),
    }
    line = encode(record)
    fd = os.open(directory / "bare.journal", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        start = time.perf_counter()
        for _ in range(n):
            os.write(fd, line)
            os.fdatasync(fd)
        return n / (time.perf_counter() - start)
    finally:
        os.close(fd)


async def gather_noops(settings: Settings, n: int) -> float:
    """No-op action runs per second with no engine at all."""
    action = load_actions(["noop"])["noop"]
    params = action.params_model.model_validate({})
    ctx = ActionContext("wf", "t", 1, "wf/t/1", settings.home, settings, lambda s, t: None)
    start = time.perf_counter()
    await asyncio.gather(*(action.run(params, ctx) for _ in range(n)))
    return n / (time.perf_counter() - start)


# ---- the engine --------------------------------------------------------------------------


async def tasks_per_second(orch: Orchestrator, spec: WorkflowSpec) -> tuple[float, float]:
    """`(tasks/s, journal records per fsync batch)` for one run of `spec`, submit to done."""
    committer = orch.engine.committer
    batches, records = committer.batches, committer.records
    start = time.perf_counter()
    submitted = await orch.submit(spec)
    done = await orch.wait(submitted.id, 120)
    elapsed = time.perf_counter() - start
    assert done.state == "succeeded", done
    per_batch = (committer.records - records) / max(1, committer.batches - batches)
    return len(spec.tasks) / elapsed, per_batch


async def recovery(settings: Settings) -> tuple[float, float, int]:
    """Seconds to start on a 10,000-task journal (replay) and, once it finished, on its
    summary line, and the records replayed."""
    tasks = [_noop(f"t{i}") for i in range(N_RECOVERY - 1)]
    tasks.append({"id": "last", "action": "sleep", "params": {"seconds": 3600}})
    spec = WorkflowSpec.model_validate({"name": "recovery", "tasks": tasks})
    actions = load_actions(["noop", "sleep"])
    orch = Orchestrator(settings, actions=actions, checkpoint_every=10**9)
    await orch.start()
    submitted = await orch.submit(spec)
    async for event in orch.events(since=0, workflow_id=submitted.id):
        if event.task_id == "last" and event.state == "running":
            break
    await orch.stop(grace_s=0)  # "last" stays running: the journal holds everything
    journal = settings.journal_dir / f"{submitted.id}.journal"
    records = sum(1 for _ in journal.open("rb"))

    replayed = Orchestrator(settings, actions=actions)
    start = time.perf_counter()
    await replayed.start()
    replay_s = time.perf_counter() - start
    await replayed.cancel(submitted.id)
    await replayed.wait(submitted.id, 60)  # finished: compacted into a snapshot
    await replayed.stop(grace_s=0)

    loaded = Orchestrator(settings, actions=actions)
    start = time.perf_counter()
    await loaded.start()
    snapshot_s = time.perf_counter() - start
    await loaded.stop()
    return replay_s, snapshot_s, records


async def _start_s(settings: Settings) -> tuple[float, int]:
    """Seconds to start an engine on `settings`' journal, and the workflows it replayed."""
    orch = Orchestrator(settings, actions=load_actions(["noop", "sleep"]))
    start = time.perf_counter()
    await orch.start()
    elapsed = time.perf_counter() - start
    replayed = len(orch.engine.workflows)
    await orch.stop(grace_s=0)
    return elapsed, replayed


def _ten(name: str, last: dict[str, Any]) -> WorkflowSpec:
    tasks = [_noop(f"t{i}") for i in range(9)] + [last]
    return WorkflowSpec.model_validate({"name": name, "tasks": tasks})


async def restarts(root: Path) -> dict[str, float]:
    """Start-up on an empty directory, on N_HISTORY finished and on N_HISTORY unfinished."""
    actions = load_actions(["noop", "sleep"])
    out: dict[str, float] = {}
    out["start empty"], _ = await _start_s(_settings(root / "empty"))
    for kind, last in (
        ("finished", _noop("last")),
        ("unfinished", {"id": "last", "action": "sleep", "params": {"seconds": 3600}}),
    ):
        settings = _settings(root / kind)
        orch = Orchestrator(settings, actions=actions, concurrency=N_HISTORY * 10)
        await orch.start()
        ids = [(await orch.submit(_ten(kind, last))).id for _ in range(N_HISTORY)]
        if kind == "finished":
            for wf_id in ids:
                await orch.wait(wf_id, 60)
        await orch.stop(grace_s=0)
        out[f"start {kind}"], out[f"replayed {kind}"] = await _start_s(settings)
    return out


async def _max_stall(work: Any) -> float:
    """The longest the event loop went unserved (seconds) while `work` ran."""
    stall = 0.0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal stall
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            stall = max(stall, now - last)
            last = now

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    try:
        await work
    finally:
        done.set()
        await tick
    return stall


async def loop_stalls(settings: Settings) -> dict[str, float]:
    """Loop stalls: idle, while the API takes a 1 MiB workflow, while it pages a log."""
    orch = Orchestrator(settings, actions=load_actions(["noop", "sleep", "shell"]))
    await orch.start()
    transport = httpx.ASGITransport(app=create_app(orch, "bench"))
    headers = {"Authorization": "Bearer bench"}
    out: dict[str, float] = {}
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://o") as client:
            out["idle"] = await _max_stall(asyncio.sleep(0.5))
            pad = "x" * 100
            tasks = [{"id": "root", "action": "sleep", "params": {"seconds": 3600}}]
            tasks += [_noop(f"t{i}-{pad}", "root") for i in range(7000)]
            body = json.dumps({"name": "big", "tasks": tasks}).encode()
            out["submit bytes"] = len(body)
            post = client.post("/v1/workflows", content=body, headers=headers)
            out["submit"] = await _max_stall(post)
            stalls = await _registry_submit_stalls(settings, orch, tasks)
            out["registry submit"], out["registry submit frozen"], out["registry submit no gc"] = (
                stalls
            )
            command = f'yes "" | head -n {EMPTY_LINES}'
            chatty = {
                "name": "chatty",
                "tasks": [{"id": "c", "action": "shell", "params": {"command": command}}],
            }
            submitted = await client.post("/v1/workflows", json=chatty, headers=headers)
            wf_id = submitted.json()["data"]["id"]
            await orch.wait(wf_id, 120)
            logs_path = f"/v1/workflows/{wf_id}/tasks/c/logs"
            out["logs"] = await _max_stall(client.get(logs_path, headers=headers))
            out["logs bytes"] = len((await client.get(logs_path, headers=headers)).content)
    finally:
        await orch.stop(grace_s=0)
    return out


async def _registry_submit_stalls(
    settings: Settings, orch: Orchestrator, tasks: list[dict[str, Any]]
) -> tuple[float, float, float]:
    """`workflow.submit` of the same 1 MiB workflow through the registry pipeline (input
    validation, authorization, the handler, the engine, audit), as a tier calls it: as
    is, with the heap frozen as a started platform freezes it (`daemons.common.heap`), and
    with the garbage collector paused (its full collections walk the whole heap, whatever
    the request: that part is the process's, the rest the call's own)."""
    keystore = KeyStore(settings)
    registry = build_registry(settings, keystore=keystore)
    registry.resources.put(OrchestratorHandle, OrchestratorHandle(orch, "in process"))
    args = {"name": "big-registry", "tasks": tasks}
    try:
        owner = keystore.owner()
        warm = await registry.invoke("workflow.submit", args, principal=owner)
        assert warm.ok, warm.error  # the first call also builds caches; measure the next ones
        with_gc = await _max_stall(registry.invoke("workflow.submit", args, principal=owner))
        freeze_startup_heap()  # as a started platform has done
        try:
            frozen = await _max_stall(registry.invoke("workflow.submit", args, principal=owner))
        finally:
            gc.unfreeze()  # the benches after this one measure an unfrozen heap
        gc.collect()
        gc.disable()
        try:
            own = await _max_stall(registry.invoke("workflow.submit", args, principal=owner))
        finally:
            gc.enable()
        return with_gc, frozen, own
    finally:
        await registry.aclose()


def _rss_bytes() -> int:
    with Path("/proc/self/statm").open() as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def _memory_probe(home: Path) -> dict[str, int]:
    """RSS before and after a 10,000-task workflow is submitted and done (run in a subprocess)."""
    orch = Orchestrator(_settings(home), actions=load_actions(["noop"]))
    await orch.start()
    warm = await orch.submit(fan_out(100))  # warm up code paths and caches
    await orch.wait(warm.id, 60)
    gc.collect()
    before = _rss_bytes()
    submitted = await orch.submit(fan_out(N_RECOVERY))
    await orch.wait(submitted.id, 120)
    gc.collect()
    after = _rss_bytes()
    await orch.stop()
    return {"before": before, "after": after}


def memory(home: Path) -> float:
    """MiB of extra resident memory for 10,000 tasks, measured in a fresh interpreter."""
    code = (
        "import asyncio, json, pathlib, sys; from bench.orchestrator import _memory_probe; "
        "print(json.dumps(asyncio.run(_memory_probe(pathlib.Path(sys.argv[1])))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(home)],
        check=True,
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
    )
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    return (probe["after"] - probe["before"]) / (1 << 20)


# ---- the run -----------------------------------------------------------------------------


async def run(root: Path) -> dict[str, float]:
    results: dict[str, float] = {}
    settings = _settings(root / "engine")
    results["fsync"] = fsync_loop(root, N)
    results["gather"] = max([await gather_noops(settings, N) for _ in range(ROUNDS)])
    orch = Orchestrator(settings, actions=load_actions(["noop"]))
    await orch.start()
    try:
        await tasks_per_second(orch, fan_out(200))  # warm-up
        for name, make in (("chain", chain), ("fan-out", fan_out), ("diamonds", diamonds)):
            runs = [await tasks_per_second(orch, make(N)) for _ in range(ROUNDS)]
            best = max(runs)
            results[name], results[f"{name} batch"] = best
    finally:
        await orch.stop()
    results["replay"], results["snapshot"], results["records"] = await recovery(
        _settings(root / "recovery")
    )
    results.update(await restarts(root / "restarts"))
    results.update(
        {f"stall {k}": v for k, v in (await loop_stalls(_settings(root / "loop"))).items()}
    )
    return results


def report(r: dict[str, float]) -> bool:
    fsync, gather = r["fsync"], r["gather"]
    rows = [
        ["bare fsync'd append loop (disk)", f"{fsync:,.0f} records/s", "1", "1.00x", "-"],
        ["bare asyncio.gather no-ops (CPU)", f"{gather:,.0f} tasks/s", "-", "-", "1.00x"],
    ]
    for name in ("chain", "fan-out", "diamonds"):
        rate = r[name]
        rows.append(
            [
                f"engine {name} of {N:,} (durable)",
                f"{rate:,.0f} tasks/s",
                f"{r[f'{name} batch']:.1f}",
                f"{2 * rate / fsync:.2f}x",
                f"{gather / rate:,.0f}x",
            ]
        )
    print_table(
        "Orchestrator: durable no-op throughput (2 fsynced journal records per task)",
        ["measurement", "rate", "records/fsync", "records/s vs disk", "time/task vs CPU"],
        rows,
    )
    overhead_us = (1 / r["fan-out"] - 1 / gather) * 1e6
    print_table(
        "Orchestrator: scheduling, recovery, memory",
        ["measurement", "value"],
        [
            ["scheduling + journaling overhead per task (fan-out)", f"{overhead_us:,.0f} µs"],
            [f"recovery: replay a {N_RECOVERY:,}-task journal", f"{r['replay']:.3f} s"],
            ["  (journal records replayed)", f"{r['records']:,.0f}"],
            [
                f"recovery: the {N_RECOVERY:,}-task workflow once finished (summary line)",
                f"{r['snapshot']:.3f} s",
            ],
            [f"extra resident memory for {N_RECOVERY:,} tasks", f"{r['memory']:.1f} MiB"],
        ],
    )
    base = r["start empty"]
    print_table(
        f"Orchestrator: restart with {N_HISTORY:,} workflows of 10 tasks",
        ["journal directory", "start-up", "workflows replayed", "vs empty"],
        [
            ["empty (baseline)", f"{base * 1000:,.1f} ms", "0", "1.0x"],
            *(
                [
                    f"{N_HISTORY:,} {kind}",
                    f"{r[f'start {kind}'] * 1000:,.1f} ms",
                    f"{r[f'replayed {kind}']:,.0f}",
                    f"{r[f'start {kind}'] / base:,.1f}x",
                ]
                for kind in ("finished", "unfinished")
            ),
        ],
    )
    idle = r["stall idle"]
    print_table(
        "Orchestrator API: longest event-loop stall per request",
        ["request", "answer", "stall", "vs idle"],
        [
            ["none (idle loop, baseline)", "-", f"{idle * 1000:.1f} ms", "1.0x"],
            [
                f"POST a {r['stall submit bytes'] / (1 << 20):.1f} MiB workflow (7,001 tasks)",
                "-",
                f"{r['stall submit'] * 1000:.1f} ms",
                f"{r['stall submit'] / idle:,.1f}x",
            ],
            [
                "workflow.submit of the same workflow through the registry",
                "-",
                f"{r['stall registry submit'] * 1000:.1f} ms",
                f"{r['stall registry submit'] / idle:,.1f}x",
            ],
            [
                "  the same, heap frozen after start-up (as the platform does)",
                "-",
                f"{r['stall registry submit frozen'] * 1000:.1f} ms",
                f"{r['stall registry submit frozen'] / idle:,.1f}x",
            ],
            [
                "  the same, garbage collector paused (the call's own work)",
                "-",
                f"{r['stall registry submit no gc'] * 1000:.1f} ms",
                f"{r['stall registry submit no gc'] / idle:,.1f}x",
            ],
            [
                f"GET logs of a task that printed {EMPTY_LINES:,} empty lines",
                f"{r['stall logs bytes'] / 1024:,.0f} KiB",
                f"{r['stall logs'] * 1000:.1f} ms",
                f"{r['stall logs'] / idle:,.1f}x",
            ],
        ],
    )
    bars = [
        (
            f"fan-out ≥ {BAR_FANOUT_PER_S:,.0f} durable tasks/s",
            f"{r['fan-out']:,.0f}",
            r["fan-out"] >= BAR_FANOUT_PER_S,
        ),
        (
            f"recovery of {N_RECOVERY:,} tasks ≤ {BAR_RECOVERY_S:g} s",
            f"{max(r['replay'], r['snapshot']):.3f} s",
            max(r["replay"], r["snapshot"]) <= BAR_RECOVERY_S,
        ),
        (
            f"memory for {N_RECOVERY:,} tasks ≤ {BAR_MEMORY_MIB:g} MiB",
            f"{r['memory']:.1f} MiB",
            r["memory"] <= BAR_MEMORY_MIB,
        ),
    ]
    print_table(
        "Orchestrator: bars",
        ["bar", "measured", "verdict"],
        [[b, m, verdict(ok)] for b, m, ok in bars],
    )
    return all(ok for _, _, ok in bars)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="prvng-bench-orch-") as tmp:
        root = Path(tmp)
        results = asyncio.run(run(root))
        results["memory"] = memory(root / "memory")
    return 0 if report(results) else 1


if __name__ == "__main__":
    sys.exit(main())
