"""The `shell` action: real /bin/sh processes, their output, env, cwd, failures and kills."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from daemons.common.files import pid_alive
from daemons.common.settings import Settings
from daemons.orchestrator.actions import ActionContext, ActionError, load_actions
from daemons.orchestrator.actions.shell import TAIL_BYTES, ShellAction, ShellParams


class Log:
    """Collects `ctx.log` calls; `wait_for` waits (event-driven) until a stream shows a text."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, str]] = []
        self._changed = asyncio.Event()

    def __call__(self, stream: str, text: str) -> None:
        self.entries.append((stream, text))
        self._changed.set()

    def text(self, stream: str) -> str:
        return "".join(t for s, t in self.entries if s == stream)

    async def wait_for(self, stream: str, needle: str, within_s: float = 10) -> str:
        async with asyncio.timeout(within_s):
            while needle not in self.text(stream):
                self._changed.clear()
                await self._changed.wait()
        return self.text(stream)


@pytest.fixture
def log() -> Log:
    return Log()


@pytest.fixture
def ctx(tmp_path: Path, settings: Settings, log: Log) -> ActionContext:
    return ActionContext(
        workflow_id="wf-1",
        task_id="task-a",
        attempt=2,
        idempotency_key="wf-1/task-a",
        workspace=tmp_path / "work" / "wf-1",
        settings=settings,
        log=log,
    )


async def run(ctx: ActionContext, **params: object) -> dict[str, object]:
    return await ShellAction().run(ShellParams.model_validate(params), ctx)


async def test_output_is_streamed_to_the_log_and_kept_in_the_result(
    ctx: ActionContext, log: Log
) -> None:
    result = await run(ctx, command="echo out; echo err >&2; echo more")
    assert result == {"exit_code": 0, "stdout_tail": "out\nmore\n", "stderr_tail": "err\n"}
    assert log.text("stdout") == "out\nmore\n" and log.text("stderr") == "err\n"
    assert "echo out" in log.text("info")
    assert ctx.workspace.is_dir()  # made on first use


async def test_result_keeps_only_the_tail_but_the_log_gets_everything(
    ctx: ActionContext, log: Log
) -> None:
    result = await run(ctx, command="i=0; while [ $i -lt 2000 ]; do echo line-$i; i=$((i+1)); done")
    tail = str(result["stdout_tail"])
    assert len(tail.encode()) <= TAIL_BYTES and tail.endswith("line-1999\n")
    assert "line-0\n" not in tail
    assert log.text("stdout").count("\n") == 2000 and log.text("stdout").startswith("line-0\n")


async def test_env_is_minimal_plus_task_identity(
    ctx: ActionContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRVNG_API_KEY", "secret")
    result = await run(
        ctx,
        command='echo "$GREETING|$PRVNG_IDEMPOTENCY_KEY|$PRVNG_WORKFLOW_ID|$PRVNG_TASK_ID|'
        '$PRVNG_ATTEMPT|${PRVNG_API_KEY-unset}|${PATH:+path}"',
        env={"GREETING": "hi", "PRVNG_IDEMPOTENCY_KEY": "forged"},
    )
    assert result["stdout_tail"] == "hi|wf-1/task-a|wf-1|task-a|2|unset|path\n"


async def test_argv_runs_without_a_shell(ctx: ActionContext) -> None:
    result = await run(ctx, argv=["printf", "%s", "a b; echo $HOME"])
    assert result["stdout_tail"] == "a b; echo $HOME"


async def test_cwd_is_inside_the_workspace(ctx: ActionContext, tmp_path: Path) -> None:
    (ctx.workspace / "sub").mkdir(parents=True)
    result = await run(ctx, command="pwd -P", cwd="sub")
    assert result["stdout_tail"] == f"{(ctx.workspace / 'sub').resolve()}\n"

    (ctx.workspace / "out").symlink_to(tmp_path)
    with pytest.raises(ActionError, match="outside the workspace") as escaped:
        await run(ctx, command="pwd", cwd="out")
    assert not escaped.value.retryable
    with pytest.raises(ActionError, match="not a directory") as missing:
        await run(ctx, command="pwd", cwd="nope")
    assert not missing.value.retryable


@pytest.mark.parametrize(
    "params",
    [
        {"command": "true", "cwd": "../other"},
        {"command": "true", "cwd": "/etc"},
        {"command": "true", "argv": ["true"]},
        {},
        {"command": "true", "env": {"BAD-NAME": "x"}},
        {"command": "true", "unknown": 1},
    ],
)
def test_bad_params_are_refused_before_anything_runs(params: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ShellParams.model_validate(params)


async def test_non_zero_exit_is_a_retryable_error_with_the_stderr_tail(ctx: ActionContext) -> None:
    with pytest.raises(ActionError, match="exited with status 3: boom") as failed:
        await run(ctx, command="echo partial; echo boom >&2; exit 3")
    assert failed.value.retryable
    assert failed.value.details == {
        "exit_code": 3,
        "stdout_tail": "partial\n",
        "stderr_tail": "boom\n",
    }


async def test_a_missing_program_is_not_retryable(ctx: ActionContext) -> None:
    with pytest.raises(ActionError, match="cannot start") as failed:
        await run(ctx, argv=["/nonexistent/program"])
    assert not failed.value.retryable


async def test_timeout_kills_the_whole_process_group(ctx: ActionContext, log: Log) -> None:
    # The error names the 0.5 s timeout: the attempt did not wait for `sleep 30` to end.
    with pytest.raises(ActionError, match=r"timed out after 0\.5s") as failed:
        await run(ctx, command="sleep 30 & echo $!; wait", timeout_s=0.5)
    assert failed.value.retryable
    child = int(log.text("stdout"))
    assert not pid_alive(child)


async def test_cancellation_kills_the_whole_process_group(ctx: ActionContext, log: Log) -> None:
    task = asyncio.create_task(run(ctx, command="sleep 30 & echo $!; wait"))
    child = int(await log.wait_for("stdout", "\n"))
    assert pid_alive(child)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not pid_alive(child)


async def test_a_group_ignoring_sigterm_gets_sigkill_after_the_grace(
    ctx: ActionContext, log: Log
) -> None:
    task = asyncio.create_task(
        run(ctx, command="trap '' TERM; sleep 30 & echo $!; wait", kill_grace_s=0.3)
    )
    child = int(await log.wait_for("stdout", "\n"))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not pid_alive(child)  # SIGTERM was ignored: only the SIGKILL after the grace ends it


async def test_a_detached_background_process_does_not_hang_the_task(
    ctx: ActionContext, log: Log
) -> None:
    # The daemon keeps our stdout open; the task still ends once its shell has exited, long
    # before the daemon does (the deadline is a hang guard, not a speed goal).
    async with asyncio.timeout(20):
        result = await run(ctx, command="setsid sleep 30 & echo $! > daemon.pid")
    pid = int((ctx.workspace / "daemon.pid").read_text())
    try:
        assert result["exit_code"] == 0
        assert "held open by a background process" in log.text("info")
    finally:
        os.kill(pid, 9)


def test_every_action_of_this_package_loads_by_name() -> None:
    actions = load_actions(("shell", "http_request", "server", "taskserv"))
    assert sorted(actions) == [
        "http",
        "server.create",
        "server.delete",
        "server.probe",
        "shell",
        "taskserv.install",
        "taskserv.remove",
    ]
