"""Helpers for the orchestrator tests: spec building, marker files, and a real action with
controllable outcomes (the engine's seam is the action, so this is not a mock)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from daemons.common.settings import Settings
from daemons.orchestrator.actions import ActionContext, ActionError
from daemons.orchestrator.model import WorkflowSpec


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    marker: str | None = None
    failures: int = 0
    retryable: bool = True
    unless: str | None = None
    log_bytes: int = Field(default=0, ge=0)
    hold_s: float = 0.0


def _mark(ctx: ActionContext, marker: str | None) -> None:
    if marker is not None:
        with (ctx.workspace / marker).open("a") as f:
            f.write(f"{ctx.task_id} {ctx.attempt} {os.getpid()}\n")


class FlakyAction:
    """Fails its first `failures` attempts, or every attempt while file `unless` is missing.
    Leaves a marker line per run, logs `log_bytes` of output, works `hold_s` seconds."""

    name: ClassVar[str] = "flaky"
    params_model: ClassVar[type[BaseModel]] = _Params

    async def run(self, params: BaseModel, ctx: ActionContext) -> dict[str, Any]:
        assert isinstance(params, _Params)
        _mark(ctx, params.marker)
        for i in range(params.log_bytes // 100):
            ctx.log("stdout", f"{i:07d} " + "x" * 91 + "\n")
        if params.hold_s:
            await asyncio.sleep(params.hold_s)  # "slow work", so a test can catch it running
        if ctx.attempt <= params.failures:
            raise ActionError(f"planned failure {ctx.attempt}", retryable=params.retryable)
        if params.unless is not None and not (ctx.workspace / params.unless).exists():
            raise ActionError(f"{params.unless} is missing", retryable=params.retryable)
        return {"attempt": ctx.attempt, "key": ctx.idempotency_key}


def spec(*tasks: dict[str, Any], **fields: Any) -> WorkflowSpec:
    return WorkflowSpec.model_validate(
        {"name": fields.pop("name", "test"), "tasks": list(tasks), **fields}
    )


def workspace(settings: Settings, workflow_id: str) -> Path:
    return settings.home / "work" / workflow_id


def marker_lines(path: Path) -> list[tuple[str, int, int]]:
    """`(task_id, attempt, pid)` per run, in order; [] when nothing ran."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        task_id, attempt, pid = line.split()
        rows.append((task_id, int(attempt), int(pid)))
    return rows
