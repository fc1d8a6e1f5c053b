"""Where a settings tool's workspace comes from: a file of the workspace, or Nickel text.

Text is written to a private temporary directory and read through the config cache like
a file, so its imports resolve against the workspace (`schemas/server.ncl`) and stay
confined to it exactly as a file's do.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from daemons.common.settings import Settings
from daemons.ncl_sync import ConfigCache
from registry import StrictModel, ToolContext
from registry.errors import PlatformError
from tools.config.nickel import evaluate

TEXT_LABEL = "<text>"
"""The file name errors in given text are reported under."""
TEXT_MAX = 256 * 1024


class SourceInput(StrictModel):
    """A workspace file, or Nickel text (exactly one)."""

    path: str | None = Field(
        default=None, max_length=512, description="A .ncl file in PRVNG_CONFIG"
    )
    text: str | None = Field(default=None, max_length=TEXT_MAX, description="Nickel text instead")

    @model_validator(mode="after")
    def _one(self) -> SourceInput:
        if (self.path is None) == (self.text is None):
            raise ValueError("give exactly one of `path` (a workspace file) or `text` (Nickel)")
        return self

    @property
    def label(self) -> str:
        return self.path if self.path is not None else TEXT_LABEL


@dataclass(frozen=True, slots=True)
class Workspace:
    """Where the config files are and the cache every read of them goes through."""

    settings: Settings
    cache: ConfigCache

    @property
    def config_dir(self) -> Path:
        return self.settings.config_dir


async def workspace_of(ctx: ToolContext) -> Workspace:
    settings = await ctx.resource(Settings)
    return Workspace(settings, await ctx.resource(ConfigCache))


async def load(ws: Workspace, source: SourceInput) -> Any:
    """The evaluated value of `source`; `InvalidInput` with Nickel's diagnostic otherwise."""
    if source.path is not None:
        return await evaluate(ws.cache, ws.config_dir, source.path)
    return await evaluate_text(ws, source.text or "")


async def evaluate_text(ws: Workspace, text: str, *, files: dict[str, str] | None = None) -> Any:
    """Evaluate Nickel `text` as if it were a file at the workspace root (imports resolve
    there); `files` are written next to it (a JSON document it imports)."""
    return await asyncio.to_thread(_evaluate_text, ws, text, files or {})


def _evaluate_text(ws: Workspace, text: str, files: dict[str, str]) -> Any:
    with tempfile.TemporaryDirectory(prefix="prvng-settings-") as tmp:
        draft = Path(tmp) / "draft.ncl"
        draft.write_text(text, encoding="utf-8")
        for name, content in files.items():
            (Path(tmp) / name).write_text(content, encoding="utf-8")
        try:
            return ws.cache.read(ws.config_dir.resolve(), draft)
        except PlatformError as exc:
            raise _relabelled(exc, str(Path(tmp).resolve())) from None
        finally:
            ws.cache.last_good.pop(draft, None)


def _relabelled(exc: PlatformError, tmp: str) -> PlatformError:
    """The error with the temporary file's path replaced by `<text>`."""

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            value = value.replace(f"{tmp}/draft.ncl", TEXT_LABEL).replace(tmp + "/", "")
            return value.replace("draft.ncl imports", f"{TEXT_LABEL} imports")
        return value

    details = {k: clean(v) for k, v in exc.details.items()}
    return type(exc)(clean(exc.message), details=details)


__all__ = ["TEXT_LABEL", "SourceInput", "Workspace", "evaluate_text", "load", "workspace_of"]
