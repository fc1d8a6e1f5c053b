"""`shell`: run a command in the workflow's workspace, its output streamed to the task log.

When the platform runs as root, the command runs as `PRVNG_TASK_USER` (`task_user`).

Every command runs in its own session (process group). When the task times out or is
cancelled, the whole group gets SIGTERM, then SIGKILL after a grace period, so nothing it
started in the background outlives the task. `run_process` is shared with the taskserv
actions, which run install/remove scripts the same way.
"""

from __future__ import annotations

import asyncio
import codecs
import os
import re
import shlex
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from daemons.common.files import private_dir
from daemons.orchestrator.actions.base import ActionContext, ActionError, LogSink
from daemons.orchestrator.actions.processes import terminate_group
from daemons.orchestrator.actions.secret_refs import SecretRef, SecretResolver
from daemons.orchestrator.actions.task_user import TaskUser, task_user

_STREAMS = {1: "stdout", 2: "stderr"}
TAIL_BYTES = 4096
"""How much of each stream the result keeps (the full output is in the task log)."""
DRAIN_S = 2.0
"""How long to keep reading output after the command ended (a leftover background
process may hold the pipe open forever)."""
INHERITED_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ShellParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    command: str | None = Field(default=None, min_length=1, description="Run by /bin/sh -c")
    argv: list[str] | None = Field(default=None, min_length=1, description="Run directly")
    cwd: str = Field(default=".", description="Relative to the workflow's workspace")
    env: dict[str, str | SecretRef] = Field(
        default_factory=dict,
        description='Added to a minimal env; a value may be {"secret": name}, resolved at run time',
    )
    timeout_s: float | None = Field(default=None, gt=0, le=86400)
    kill_grace_s: float = Field(default=5.0, ge=0, le=300, description="SIGTERM → SIGKILL")

    @model_validator(mode="after")
    def _one_of_command_or_argv(self) -> ShellParams:
        if (self.command is None) == (self.argv is None):
            raise ValueError("give exactly one of `command` (a shell string) or `argv` (a list)")
        return self

    @field_validator("cwd")
    @classmethod
    def _relative_cwd(cls, cwd: str) -> str:
        path = PurePosixPath(cwd)
        if path.is_absolute() or ".." in path.parts:
            raise ValueError(f"cwd {cwd!r} must be a path inside the workspace (no '/', no '..')")
        return cwd

    @field_validator("env")
    @classmethod
    def _env_names(cls, env: dict[str, str | SecretRef]) -> dict[str, str | SecretRef]:
        for name, value in env.items():
            if not _ENV_NAME.fullmatch(name) or (isinstance(value, str) and "\0" in value):
                raise ValueError(f"env {name!r}: names are [A-Za-z_][A-Za-z0-9_]*, no NUL bytes")
        return env


@dataclass(frozen=True, slots=True)
class ProcessResult:
    exit_code: int
    stdout_tail: str
    stderr_tail: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "exit_code": self.exit_code,
            "stdout_tail": self.stdout_tail,
            "stderr_tail": self.stderr_tail,
        }


class _Tail:
    """The last `limit` bytes of a stream."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._buf = bytearray()

    def add(self, chunk: bytes) -> None:
        self._buf += chunk
        if len(self._buf) > self._limit:
            del self._buf[: -self._limit]

    def text(self) -> str:
        # Drop a multi-byte character cut in half at the start.
        return bytes(self._buf).lstrip(bytes(range(0x80, 0xC0))).decode(errors="replace")


class _Collector(asyncio.SubprocessProtocol):
    """Streams a child's output to the log as it arrives and keeps the tails.

    Exit and end-of-output are tracked apart: a background process that inherited the
    pipes may keep them open long after the command itself has exited.
    """

    def __init__(self, log: LogSink, tail_bytes: int) -> None:
        self._log = log
        self.tails = {1: _Tail(tail_bytes), 2: _Tail(tail_bytes)}
        self._decoders = {
            fd: codecs.getincrementaldecoder("utf-8")(errors="replace") for fd in (1, 2)
        }
        self._open = {1, 2}
        self.exited = asyncio.Event()
        self.drained = asyncio.Event()

    def pipe_data_received(self, fd: int, data: bytes | bytearray) -> None:
        self.tails[fd].add(bytes(data))
        if text := self._decoders[fd].decode(bytes(data)):
            self._log(_STREAMS[fd], text)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd in self._open:
            if text := self._decoders[fd].decode(b"", final=True):
                self._log(_STREAMS[fd], text)
            self._open.discard(fd)
        if not self._open:
            self.drained.set()

    def process_exited(self) -> None:
        self.exited.set()

    def result(self, exit_code: int) -> ProcessResult:
        return ProcessResult(exit_code, self.tails[1].text(), self.tails[2].text())


async def _drain(collector: _Collector, log: LogSink) -> None:
    try:
        async with asyncio.timeout(DRAIN_S):
            await collector.drained.wait()
    except TimeoutError:
        log("info", "output still held open by a background process; stopped reading it\n")


def process_env(ctx: ActionContext, extra: dict[str, str]) -> dict[str, str]:
    """A minimal inherited environment, `extra`, then the task's identity (not overridable)."""
    env = {name: os.environ[name] for name in INHERITED_ENV if name in os.environ}
    env.setdefault("PATH", os.defpath)
    env.update(extra)
    env.update(
        PRVNG_IDEMPOTENCY_KEY=ctx.idempotency_key,
        PRVNG_WORKFLOW_ID=ctx.workflow_id,
        PRVNG_TASK_ID=ctx.task_id,
        PRVNG_ATTEMPT=str(ctx.attempt),
    )
    return env


async def run_process(
    argv: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    log: LogSink,
    timeout_s: float | None = None,
    kill_grace_s: float = 5.0,
    tail_bytes: int = TAIL_BYTES,
    on_start: Callable[[int], None] | None = None,
    user: TaskUser | None = None,
) -> ProcessResult:
    """Run `argv` in a new session, streaming its output to `log`; stop its group on exit.

    `on_start` gets the pid as soon as the process exists (to record what we started).
    With `user`, the process enters `cwd`, then runs as that user's uid and gid with no
    supplementary groups (the stdlib's `user=`/`group=`/`extra_groups=`).
    Raises `ActionError` when it cannot start (not retryable) or times out (retryable);
    on cancellation the group is stopped and `CancelledError` propagates.
    """
    loop = asyncio.get_running_loop()
    identity: dict[str, Any] = {}
    if user is not None:
        identity = {"user": user.uid, "group": user.gid, "extra_groups": []}
    try:
        transport, collector = await loop.subprocess_exec(
            lambda: _Collector(log, tail_bytes),
            *argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            **identity,
        )
    except OSError as exc:
        raise ActionError(
            f"cannot start {argv[0]!r}: {exc.strerror or exc}; check the program exists and "
            "is executable",
            retryable=False,
            details={"argv": argv},
        ) from None
    try:
        try:
            if on_start is not None:
                on_start(transport.get_pid())
            async with asyncio.timeout(timeout_s):
                await collector.exited.wait()
        except BaseException as exc:  # timeout, cancellation, a failed on_start: the group goes
            await terminate_group(transport.get_pid(), kill_grace_s)
            await _drain(collector, log)
            if isinstance(exc, TimeoutError):
                raise ActionError(
                    f"command timed out after {timeout_s:g}s; its process group was stopped",
                    details={
                        "timeout_s": timeout_s,
                        "stdout_tail": collector.tails[1].text(),
                        "stderr_tail": collector.tails[2].text(),
                    },
                ) from None
            raise
        await _drain(collector, log)
        exit_code = transport.get_returncode()
        assert exit_code is not None  # it has exited
        return collector.result(exit_code)
    finally:
        transport.close()


def failure(what: str, result: ProcessResult) -> ActionError:
    """A retryable error for a command that exited non-zero, with its output tails."""
    if result.exit_code < 0:
        why = f"was killed by signal {signal.Signals(-result.exit_code).name}"
    else:
        why = f"exited with status {result.exit_code}"
    last = next((ln for ln in reversed(result.stderr_tail.splitlines()) if ln.strip()), "")
    return ActionError(
        f"{what} {why}" + (f": {last[:200]}" if last else ""), details=result.to_dict()
    )


def resolve_cwd(workspace: Path, cwd: str) -> Path:
    """`cwd` inside the workspace (the workspace is created if missing); no symlink may lead
    out of it."""
    root = private_dir(workspace).resolve()
    target = (root / cwd).resolve()
    if not target.is_relative_to(root):
        raise ActionError(
            f"cwd {cwd!r} leads outside the workspace {root}", retryable=False, details={"cwd": cwd}
        )
    if not target.is_dir():
        raise ActionError(
            f"cwd {cwd!r} is not a directory in the workspace {root}; create it in an earlier "
            "task or leave cwd unset",
            retryable=False,
            details={"cwd": cwd},
        )
    return target


class ShellAction:
    """Run a command (`/bin/sh -c`) or an argv; non-zero exit fails the attempt."""

    name: ClassVar[str] = "shell"
    params_model: ClassVar[type[BaseModel]] = ShellParams

    async def run(self, params: BaseModel, ctx: ActionContext) -> dict[str, Any]:
        assert isinstance(params, ShellParams)
        argv = ["/bin/sh", "-c", params.command] if params.command is not None else params.argv
        assert argv is not None  # the model guarantees one of them
        cwd = resolve_cwd(ctx.workspace, params.cwd)
        user = task_user(ctx.settings)
        identity = {} if user is None else user.env()
        if user is not None:
            user.own(ctx.workspace)
        secrets = SecretResolver(ctx.settings)
        env = {name: secrets.value(value) for name, value in params.env.items()}
        ctx.log("info", f"$ {params.command or shlex.join(argv)}\n")
        log = secrets.log(ctx.log)
        try:
            result = await run_process(
                argv,
                cwd=cwd,
                env=process_env(ctx, {"PRVNG_WORKSPACE": str(ctx.workspace), **identity, **env}),
                log=log,
                timeout_s=params.timeout_s,
                kill_grace_s=params.kill_grace_s,
                user=user,
            )
        except ActionError as exc:
            raise secrets.scrub_error(exc) from None
        finally:
            log.flush()
        if result.exit_code != 0:
            raise secrets.scrub_error(failure("command", result))
        return dict(secrets.scrub(result.to_dict()))


ACTIONS = (ShellAction,)
