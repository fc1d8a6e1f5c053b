"""`noop`: does nothing, durably. Used to measure the engine itself and by tests, which ask
it to leave a marker line per run so they can count how often each task really ran."""

from __future__ import annotations

import os
from pathlib import PurePosixPath
from typing import Any, ClassVar

from pydantic import BaseModel, Field, field_validator

from daemons.common.files import private_dir
from daemons.orchestrator.actions.base import ActionContext
from registry.model import StrictModel


class NoopParams(StrictModel):
    marker: str | None = Field(
        default=None,
        max_length=255,
        description="A file, relative to the workspace, that gets `<task> <attempt> <pid>` "
        "appended per run",
    )

    @field_validator("marker")
    @classmethod
    def _inside_workspace(cls, marker: str | None) -> str | None:
        if marker is not None:
            path = PurePosixPath(marker)
            if path.is_absolute() or ".." in path.parts or not path.parts:
                raise ValueError(f"{marker!r} must be a relative path inside the workspace")
        return marker


class NoopAction:
    """Succeed at once (after appending the marker line, when asked)."""

    name: ClassVar[str] = "noop"
    params_model: ClassVar[type[BaseModel]] = NoopParams

    async def run(self, params: BaseModel, ctx: ActionContext) -> dict[str, Any]:
        assert isinstance(params, NoopParams)
        if params.marker is not None:
            path = ctx.workspace / params.marker
            private_dir(path.parent)
            line = f"{ctx.task_id} {ctx.attempt} {os.getpid()}\n".encode()
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)  # one small O_APPEND write: never interleaved
            finally:
                os.close(fd)
        return {}


ACTIONS = (NoopAction,)
