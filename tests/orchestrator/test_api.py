"""The internal HTTP API and its client: in process (ASGI) for the contract, and the real
daemon in a subprocess for SSE, signals, and kill -9 in the middle of a workflow."""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from daemons.common.settings import PROJECT_ROOT, Settings
from daemons.orchestrator.durability.journal import JournalFile
from daemons.orchestrator.durability.recovery import load_workflow
from daemons.orchestrator.engine.service import Orchestrator
from daemons.orchestrator.model import TaskState, WorkflowSpec, WorkflowState
from daemons.orchestrator.protocol import OrchestratorAPI
from daemons.orchestrator.serving.api import create_app
from daemons.orchestrator.serving.client import OrchestratorClient
from daemons.orchestrator.views import Event
from orchestrator.helpers import marker_lines, spec, workspace
from registry.errors import Conflict, InvalidInput, NotFound, Unauthenticated

TOKEN = "test-token"


@pytest.fixture
async def client(orch: Orchestrator) -> AsyncIterator[OrchestratorClient]:
    transport = httpx.ASGITransport(app=create_app(orch, TOKEN))
    async with OrchestratorClient("http://orchestrator", TOKEN, transport=transport) as c:
        yield c


async def test_the_client_speaks_the_whole_api_with_the_facades_types_and_errors(
    client: OrchestratorClient, orch: Orchestrator
) -> None:
    api: OrchestratorAPI = client  # the seam tools use; the facade satisfies it too
    wf = spec(
        {"id": "a", "action": "flaky", "params": {"log_bytes": 300}},
        {"id": "b", "action": "noop", "depends_on": ["a"]},
        labels={"env": "dev"},
    )
    submitted = await api.submit(wf)
    done = await api.wait(submitted.id, 10)
    assert done.state == WorkflowState.SUCCEEDED and done == await orch.get(submitted.id)
    assert await api.get(done.id) == done
    assert (await api.list(labels={"env": "dev"}, state=WorkflowState.SUCCEEDED)).workflows == [
        done
    ]
    assert await api.tasks(done.id) == await orch.tasks(done.id)
    assert [t.id for t in await api.tasks(done.id, TaskState.SUCCEEDED)] == ["a", "b"]
    assert await api.task(done.id, "b") == await orch.task(done.id, "b")
    assert len((await api.logs(done.id, "a", tail=2)).lines) == 2
    page = await api.logs(done.id, "a", offset=1, limit=1)
    assert page == await orch.logs(done.id, "a", offset=1, limit=1) and len(page.lines) == 1
    with pytest.raises(InvalidInput, match="limit must be between 1 and 5000"):
        await api.logs(done.id, "a", limit=5001)

    with pytest.raises(NotFound, match="no workflow 'wf-nope'"):
        await api.get("wf-nope")
    with pytest.raises(Conflict, match="already finished"):
        await api.cancel(done.id)
    with pytest.raises(Conflict):
        await api.retry(done.id)
    with pytest.raises(InvalidInput, match="cycle: a → a") as caught:
        await api.submit(spec({"id": "a", "action": "noop", "depends_on": ["a"]}))
    assert caught.value.details == {"cycle": ["a", "a"]}
    with pytest.raises(InvalidInput, match="cycle: a → a"):  # checked, recording nothing
        await api.check(spec({"id": "a", "action": "noop", "depends_on": ["a"]}))
    before = await api.list()
    await api.check(wf)
    assert await api.list() == before

    rolled = await api.rollback(done.id)
    assert rolled.state in (WorkflowState.ROLLING_BACK, WorkflowState.ROLLED_BACK)


async def test_requests_without_the_token_or_outside_the_api_get_error_envelopes(
    orch: Orchestrator,
) -> None:
    transport = httpx.ASGITransport(app=create_app(orch, TOKEN))
    async with httpx.AsyncClient(transport=transport, base_url="http://o") as http:
        health = await http.get("/health")
        assert health.status_code == 200 and health.json()["data"]["ready"] is True
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            r = await http.get("/v1/workflows", headers=headers)
            assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
        auth = {"Authorization": f"Bearer {TOKEN}"}
        r = await http.post("/v1/workflows", content=b"{nope", headers=auth)
        assert r.status_code == 422 and "not valid JSON" in r.json()["error"]["message"]
        r = await http.post("/v1/workflows", json={"name": "x", "tasks": []}, headers=auth)
        assert r.status_code == 422 and r.json()["error"]["message"].startswith(
            "invalid workflow spec: tasks: List should have at least 1 item"
        )
        r = await http.get("/v1/workflows?state=bogus", headers=auth)
        assert r.status_code == 422 and "state must be one of pending" in r.text
        r = await http.get("/v1/nothing", headers=auth)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        r = await http.delete("/v1/workflows", headers=auth)
        assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
    async with OrchestratorClient("http://o", "wrong", transport=transport) as bad:
        with pytest.raises(Unauthenticated):
            await bad.list()


# ---- the real daemon ---------------------------------------------------------------------


class Daemon:
    """`python -m daemons.orchestrator` on a free port, on this test's PRVNG_HOME."""

    def __init__(self, proc: asyncio.subprocess.Process, url: str) -> None:
        self.proc = proc
        self.url = url

    @classmethod
    async def start(cls, log: Path, *args: str) -> Daemon:
        env = {**os.environ, "PRVNG_ORCHESTRATOR_TOKEN": TOKEN}
        with log.open("ab") as stderr:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                *("-m", "daemons.orchestrator", "--host", "127.0.0.1", "--port", "0"),
                *("--actions", "noop,sleep", "--grace-s", "0.2", *args),
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
                env=env,
                cwd=PROJECT_ROOT,
            )
        assert proc.stdout is not None
        try:
            line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        found = re.search(r"ready on (http://\S+) \(pid \d+\)", line)
        assert found, f"no ready line: {line!r}; stderr: {log.read_text()}"
        assert TOKEN not in line
        return cls(proc, found.group(1))

    def client(self) -> OrchestratorClient:
        return OrchestratorClient(self.url, TOKEN)

    async def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        return await asyncio.wait_for(self.proc.wait(), 15)


@pytest.fixture
async def daemons(tmp_path: Path) -> AsyncIterator[list[Daemon]]:
    """Daemons a test started; any still running at teardown are killed."""
    started: list[Daemon] = []
    yield started
    for daemon in started:
        if daemon.proc.returncode is None:
            daemon.proc.kill()
            await daemon.proc.wait()


async def test_the_daemon_streams_progress_and_stops_cleanly_on_sigterm(
    daemons: list[Daemon], tmp_path: Path
) -> None:
    daemon = await Daemon.start(tmp_path / "daemon.log")
    daemons.append(daemon)
    seen: list[Event] = []

    async def progress(event: Event) -> None:
        seen.append(event)

    async with daemon.client() as client:
        wf = spec(  # `a` outlasts setting up the event stream, so progress sees `b`
            {"id": "a", "action": "sleep", "params": {"seconds": 0.5}},
            {"id": "b", "action": "noop", "depends_on": ["a"]},
        )
        done = await client.wait((await client.submit(wf)).id, 10, on_progress=progress)
        assert done.state == "succeeded"
        assert [(e.task_id, e.state) for e in seen if e.kind == "task"][-2:] == [
            ("b", "running"),
            ("b", "succeeded"),
        ]
        assert seen[-1].kind == "workflow" and seen[-1].state == "succeeded"
        replay = [e async for e in _take(client.events(since=0), 6)]
        assert [e.seq for e in replay] == [1, 2, 3, 4, 5, 6]

        slow = await client.submit(spec({"id": "s", "action": "sleep", "params": {"seconds": 60}}))
        listening = asyncio.create_task(_drain(client.events()))  # an open SSE stream
        assert await daemon.stop(signal.SIGTERM) == 0  # the stream does not hold it up
        assert listening.done() or await asyncio.wait_for(
            asyncio.gather(listening, return_exceptions=True), 5
        )

    again = await Daemon.start(tmp_path / "daemon.log")
    daemons.append(again)
    async with again.client() as client:
        assert (await client.get(done.id)).state == "succeeded"
        assert (await client.task(slow.id, "s")).state == "running"  # resumed
        await client.cancel(slow.id)
        assert (await client.wait(slow.id, 10)).state == "cancelled"
    assert await again.stop(signal.SIGINT) == 0


async def _take(stream: AsyncIterator[Event], n: int) -> AsyncIterator[Event]:
    async for event in stream:
        yield event
        n -= 1
        if n == 0:
            return


async def _drain(stream: AsyncIterator[Event]) -> None:
    async for _ in stream:
        pass


def _dag(rng: random.Random, layers: int = 10, width: int = 5) -> list[dict[str, Any]]:
    """50 marker-writing tasks in layers, each on 1-2 tasks of the layer below, with a short
    `sleep` between layers so the workflow lasts long enough to be killed in the middle."""
    tasks: list[dict[str, Any]] = []
    for layer in range(layers):
        below = [f"l{layer - 1}t{j}" for j in range(width)] if layer else []
        pacer = [f"pace{layer - 1}"] if layer else []
        for i in range(width):
            deps = rng.sample(below, k=rng.randint(1, 2)) if below else []
            tasks.append(
                {
                    "id": f"l{layer}t{i}",
                    "action": "noop",
                    "params": {"marker": "m"},
                    "depends_on": deps + pacer,
                }
            )
        if layer < layers - 1:
            layer_ids = [f"l{layer}t{i}" for i in range(width)]
            tasks.append(
                {
                    "id": f"pace{layer}",
                    "action": "sleep",
                    "params": {"seconds": 0.02},
                    "depends_on": layer_ids,
                }
            )
    return tasks


async def test_a_stream_may_name_a_workflow_before_it_is_submitted(tmp_path: Path) -> None:
    # The filter is named `workflow_id`, like every other workflow filter of the platform.
    daemon = await Daemon.start(tmp_path / "daemon.log")
    try:
        async with daemon.client() as client, asyncio.timeout(30):
            other = await client.submit(spec({"id": "a", "action": "noop"}, name="other"))
            stream = client.events(since=0, workflow_id="later")
            first = asyncio.ensure_future(anext(stream))
            await client.submit(spec({"id": "a", "action": "noop"}, name="later"), "later")
            seen = [await first]
            async for event in stream:
                seen.append(event)
                if event.kind == "workflow" and event.state == "succeeded":
                    break
            await stream.aclose()
    finally:
        daemon.proc.kill()
        await daemon.proc.wait()
    assert {event.workflow_id for event in seen} == {"later"} != {other.id}
    assert [(e.task_id, e.state) for e in seen if e.kind == "task"] == [
        ("a", "running"),
        ("a", "succeeded"),
    ]


async def kill_and_recover(tmp_path: Path, settings: Settings, seed: int) -> tuple[int, int]:
    """One kill -9 cycle; `(tasks journaled succeeded at the kill, tasks that ran twice)`."""
    rng = random.Random(seed)
    log = tmp_path / f"daemon-{seed}.log"
    daemon = await Daemon.start(log, "--concurrency", "2")
    try:
        kill_after = rng.randint(0, 50)
        async with daemon.client() as client:
            submitted = await client.submit(spec(*_dag(rng), name=f"kill-{seed}"))
            succeeded = 0
            if kill_after:
                async for event in client.events(since=0, workflow_id=submitted.id):
                    if event.kind == "task" and event.state == "succeeded" and event.task_id:
                        succeeded += event.task_id.startswith("l")
                    finished = event.kind == "workflow" and event.state == "succeeded"
                    if succeeded >= kill_after or finished:
                        break
            daemon.proc.kill()
            await daemon.proc.wait()
    finally:
        if daemon.proc.returncode is None:
            daemon.proc.kill()
            await daemon.proc.wait()

    # What was durable at the moment of the kill.
    journaled = load_workflow(JournalFile(settings.journal_dir, submitted.id), submitted.id)
    assert journaled is not None, f"seed {seed}: the acknowledged submit was lost"
    done_before = {
        t.spec.id for t in journaled.tasks if t.state is TaskState.SUCCEEDED and t.spec.id[0] == "l"
    }

    again = await Daemon.start(log, "--concurrency", "2")
    try:
        async with again.client() as client:
            final = await client.wait(submitted.id, 30)
            assert final.state == "succeeded", f"seed {seed}: {final}"
            attempts = {t.id: t.attempts for t in await client.tasks(submitted.id)}
            assert set(attempts.values()) == {1}, f"seed {seed}: {attempts}"  # same keys
    finally:
        assert await again.stop() == 0

    runs = marker_lines(workspace(settings, submitted.id) / "m")
    count = Counter(task for task, _, _ in runs)
    every = {f"l{layer}t{i}" for layer in range(10) for i in range(5)}
    assert set(count) == every, f"seed {seed}: no side effect of {every - set(count)}"
    twice = {task for task, n in count.items() if n > 1}
    assert not twice & done_before, f"seed {seed}: journaled-succeeded tasks re-ran: {twice}"
    assert all(n == 1 for _, n, _ in runs), f"seed {seed}: a re-run changed its attempt/key"
    return len(done_before), len(twice)


async def test_kill_9_mid_workflow_loses_nothing_and_repeats_no_finished_task(
    tmp_path: Path, settings: Settings
) -> None:
    for seed in range(3):
        await kill_and_recover(tmp_path, settings, seed)


@pytest.mark.slow
async def test_kill_9_many_times(tmp_path: Path, settings: Settings) -> None:
    results = [await kill_and_recover(tmp_path, settings, seed) for seed in range(100, 125)]
    mid_run = sum(1 for done, _ in results if done < 50)
    print(
        f"\nkill -9 cycles: {len(results)}; killed mid-run: {mid_run}; "
        f"tasks done at kill: {[done for done, _ in results]}; "
        f"re-run (at-least-once, not yet journaled done): {sum(t for _, t in results)}"
    )
    assert mid_run >= len(results) // 2  # most kills really land inside the workflow


async def test_submitting_with_a_chosen_id_is_idempotent(
    client: OrchestratorClient, start_orchestrator: Any, settings: Settings, orch: Orchestrator
) -> None:
    wf = spec({"id": "a", "action": "noop", "params": {"marker": "m"}})
    first = await client.submit(wf, "op-123")
    assert first.id == "op-123"
    again = await client.submit(wf, "op-123")
    assert again.id == "op-123" and again.created_at == first.created_at
    await orch.wait("op-123", 10)
    assert len(marker_lines(workspace(settings, "op-123") / "m")) == 1
    with pytest.raises(Conflict, match="different spec"):
        await client.submit(spec({"id": "b", "action": "noop"}), "op-123")
    with pytest.raises(InvalidInput, match="workflow id"):
        await client.submit(wf, "../escape")
    await orch.stop()
    recovered = await start_orchestrator()
    assert (await recovered.submit(wf, "op-123")).state == WorkflowState.SUCCEEDED


async def test_a_workflow_id_with_a_trailing_newline_is_refused_and_creates_no_file(
    client: OrchestratorClient, orch: Orchestrator, settings: Settings
) -> None:
    # `$` in a pattern also matches before a final newline: `evil\n` must not name a journal.
    wf = spec({"id": "a", "action": "noop"})
    with pytest.raises(InvalidInput, match="workflow id"):
        await client.submit(wf, "evil\n")
    await orch.stop()
    assert not list(settings.home.rglob("evil*"))  # no journal, snapshot or workspace


async def _events_of(client: OrchestratorClient, since: int, wf_spec: WorkflowSpec) -> list[Event]:
    """Every event after `since` up to the end of a workflow submitted once listening."""
    seen: list[Event] = []
    async with asyncio.timeout(10):  # events numbered at or below `since` would never come
        stream = client.events(since=since)
        first = asyncio.ensure_future(anext(stream))
        await client.submit(wf_spec)
        seen.append(await first)
        async for event in stream:
            seen.append(event)
            if event.kind == "workflow" and event.state == "succeeded":
                break
        await stream.aclose()
    return seen


async def test_event_ids_keep_increasing_across_a_kill_9_and_a_clean_restart(
    daemons: list[Daemon], tmp_path: Path
) -> None:
    """A client resuming with Last-Event-ID after a restart misses none of the new events
    and reads none twice: the engine numbers on after the highest id it ever handed out."""
    log = tmp_path / "daemon.log"
    last = 0
    states = ["pending", "running", "succeeded", "succeeded"]
    before = "a fresh home"
    for stop in (signal.SIGKILL, signal.SIGTERM, signal.SIGTERM):
        daemon = await Daemon.start(log)
        daemons.append(daemon)
        async with daemon.client() as client:
            seen = await _events_of(client, last, spec({"id": "a", "action": "noop"}))
        assert [e.state for e in seen] == states, f"after {before}: {seen}"
        assert len({e.workflow_id for e in seen}) == 1, f"after {before}: an old event re-read"
        assert last < seen[0].seq, f"after {before}: ids went back to {seen[0].seq} <= {last}"
        assert [e.seq for e in seen] == sorted({e.seq for e in seen})
        last = seen[-1].seq
        await daemon.stop(stop)
        before = stop.name
