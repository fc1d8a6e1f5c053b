"""The ops planes `bench.ops` drives: keeper, controller and orchestrator on one nats-server,
either in this one process (`Plane`) or as the separate daemons they are deployed as
(`SplitPlane`: the keeper here, the controller with its orchestrator in a child process,
`python -m bench.ops_plane HOME NATS_URL`, so two cores can both work).

Either way an op is timed from `Keeper.request` to its `succeeded` audit event.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from pathlib import Path

from nats.aio.msg import Msg

from daemons.bus import AUDIT_PREFIX, connect, ensure_streams
from daemons.common.heap import freeze_startup_heap
from daemons.common.settings import PROJECT_ROOT, Settings
from daemons.common.state import StateStore
from daemons.controller import Controller, OrchestratorDispatcher, TokenVerifier
from daemons.keeper import Keeper, load_policy
from daemons.ops import AuditEvent, KeyRing, OpPlan, OpRequest, OpTarget, verification_keys
from daemons.orchestrator.actions import load_actions
from daemons.orchestrator.engine.service import Orchestrator
from registry.principal import Principal

REQUESTER = Principal(id="bench", roles=frozenset({"operator"}))
READY = b"ready\n"


def bench_op(i: int) -> OpRequest:
    """An op the shipped policy auto-approves (`env=dev`), its plan one no-op task."""
    workflow = {"name": f"bench-{i}", "tasks": [{"id": "t", "action": "noop"}]}
    return OpRequest(
        type="server.create",
        target=OpTarget(name=f"web-{i}", provider="local", labels={"env": "dev"}),
        params={"name": f"web-{i}"},
        plan=OpPlan(workflow=workflow),
    )


def bench_settings(home: Path) -> Settings:
    return Settings(home=home, config_dir=PROJECT_ROOT / "config", cache_dir=home)


async def _controller(
    stack: contextlib.AsyncExitStack, home: Path, url: str, state: StateStore
) -> None:
    """An orchestrator and a controller dispatching to it, stopped by `stack`."""
    orch = Orchestrator(bench_settings(home), actions=load_actions(["noop"]), state=state)
    await orch.start()
    stack.push_async_callback(orch.stop)
    nc = await connect(url, name="bench-controller")
    stack.push_async_callback(nc.close)
    keys = KeyRing(bench_settings(home).keys_dir).load()
    controller = Controller(
        nc=nc,
        state=state,
        verifier=TokenVerifier(verification_keys(keys.jwks())),
        dispatcher=OrchestratorDispatcher(orch),
    )
    await controller.start()
    stack.push_async_callback(controller.stop)
    freeze_startup_heap()  # as `open_controller` does


class Plane:
    """Keeper, one controller and an orchestrator in this process."""

    label = "one process"

    def __init__(self, home: Path, url: str) -> None:
        self.home, self.url = home, url
        self.done: dict[str, asyncio.Future[float]] = {}
        self.early: dict[str, float] = {}

    async def __aenter__(self) -> Plane:
        self._stack = contextlib.AsyncExitStack()
        state = await self._stack.enter_async_context(StateStore.open("mem://"))
        self.nc = await connect(self.url, name="bench-keeper")
        self._stack.push_async_callback(self.nc.close)
        await ensure_streams(self.nc.jetstream())
        keys = KeyRing(bench_settings(self.home).keys_dir).load()
        policy = load_policy(PROJECT_ROOT / "config" / "keeper_policy.ncl")
        self.keeper = Keeper(policy=policy, keys=keys, state=state, js=self.nc.jetstream())
        await self._start_controller(state)
        await self.nc.subscribe(AUDIT_PREFIX + "succeeded", cb=self._succeeded)
        freeze_startup_heap()  # as `open_keeper` does
        return self

    async def _start_controller(self, state: StateStore) -> None:
        await _controller(self._stack, self.home, self.url, state)

    def cpu_s(self) -> float:
        """CPU seconds the plane has used (every thread; nats-server not counted)."""
        return time.process_time()

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def _succeeded(self, msg: Msg) -> None:
        event = AuditEvent.model_validate_json(msg.data)
        op_id, now = event.op_id or "", time.perf_counter()
        future = self.done.get(op_id)
        if future is None:  # done before `request` returned: kept for `one` to find
            self.early[op_id] = now
        elif not future.done():
            future.set_result(now)

    async def one(self, i: int) -> float:
        """One op end to end; its latency in seconds."""
        start = time.perf_counter()
        decision = await self.keeper.request(bench_op(i), REQUESTER)
        early = self.early.pop(decision.op_id, None)
        if early is not None:
            return early - start
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.done[decision.op_id] = future
        end = await asyncio.wait_for(future, 30)
        del self.done[decision.op_id]
        return end - start


class SplitPlane(Plane):
    """The keeper in this process; the controller and its orchestrator in a child process
    with a state store of its own (the keeper's and the ledger's tables never meet)."""

    label = "keeper | controller + orchestrator, two processes"

    async def _start_controller(self, state: StateStore) -> None:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.ops_plane",
            str(self.home),
            self.url,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        self.child = child
        self._stack.push_async_callback(_stop, child)
        assert child.stdout is not None
        line = await asyncio.wait_for(child.stdout.readline(), 60)
        if line != READY:
            raise RuntimeError(f"the controller process did not start: {line!r}")

    def cpu_s(self) -> float:
        """Both processes' CPU seconds (the child's from /proc: 0 where there is none)."""
        stat = Path(f"/proc/{self.child.pid}/stat")
        if not stat.exists():
            return super().cpu_s()
        fields = stat.read_text().rsplit(")", 1)[1].split()
        return super().cpu_s() + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _stop(child: asyncio.subprocess.Process) -> None:
    """Closing its stdin stops the child cleanly."""
    assert child.stdin is not None
    child.stdin.close()
    try:
        await asyncio.wait_for(child.wait(), 30)
    except TimeoutError:
        child.kill()
        await child.wait()


async def _serve(home: Path, url: str) -> None:
    """The child: controller + orchestrator until stdin closes."""
    async with contextlib.AsyncExitStack() as stack:
        state = await stack.enter_async_context(StateStore.open("mem://"))
        await _controller(stack, home, url, state)
        sys.stdout.buffer.write(READY)
        sys.stdout.flush()
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.buffer.read)


if __name__ == "__main__":
    asyncio.run(_serve(Path(sys.argv[1]), sys.argv[2]))
