"""Where a settings tool's workspace comes from: a file of the workspace, or Nickel text.

Text is written to a private temporary directory as a file would be, so its imports
resolve against the workspace (`schemas/server.ncl`) and are confined by the same check
as the config cache's (`import_graph`); it is evaluated in a child process, bounded in
time, CPU and memory (`tools.settings.isolated`), since any caller may send it.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from daemons.common.settings import Settings
from daemons.ncl_sync import ConfigCache, import_graph
from daemons.ncl_sync.cache import search_paths
from daemons.ncl_sync.evaluate import diagnostic
from registry import InvalidInput, StrictModel, ToolContext
from registry.errors import PlatformError
from tools.config.nickel import evaluate

TEXT_LABEL = "<text>"
"""The file name errors in given text are reported under."""
TEXT_MAX = 256 * 1024
TEXT_TIMEOUT_S = 10.0
"""How long given text may evaluate (a workspace evaluates in well under a second)."""
ISOLATED = Path(__file__).with_name("isolated.py")


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


async def evaluate_text(ws: Workspace, text: str) -> Any:
    """Evaluate Nickel `text` as if it were a file at the workspace root (imports resolve
    there, confined as a file's are).

    Text comes from any caller, so it runs in a child process (`tools.settings.isolated`)
    cut off after `TEXT_TIMEOUT_S`, never in this one."""
    with tempfile.TemporaryDirectory(prefix="prvng-settings-") as tmp:
        draft = await asyncio.to_thread(_write, Path(tmp), text)
        try:
            return await _isolated(ws, draft)
        except PlatformError as exc:
            raise _relabelled(exc, str(draft.parent)) from None


def _write(tmp: Path, text: str) -> Path:
    draft = tmp.resolve() / "draft.ncl"
    draft.write_text(text, encoding="utf-8")
    return draft


async def _isolated(ws: Workspace, draft: Path) -> Any:
    search = search_paths(ws.config_dir, draft, ws.cache.extra_import_paths)
    await asyncio.to_thread(import_graph, draft, search)  # confinement, as the cache checks
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-I",
        str(ISOLATED),
        str(draft),
        *map(str, search),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env={"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8"},
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), TEXT_TIMEOUT_S)
    except TimeoutError:
        raise InvalidInput(
            f"the text did not finish evaluating within {TEXT_TIMEOUT_S:g} s; look for "
            "unbounded recursion",
            details={"timeout_s": TEXT_TIMEOUT_S},
        ) from None
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    try:
        answer = json.loads(out)
    except ValueError:
        raise InvalidInput(
            "the text did not finish evaluating: it ran out of CPU time or memory "
            f"(exit {proc.returncode}); simplify it",
            details={"exit": proc.returncode},
        ) from None
    if "nickel_error" in answer:
        details = diagnostic(answer["nickel_error"], ws.config_dir)
        at = (
            f" at {details['file']}:{details['line']}:{details['column']}"
            if "file" in details
            else ""
        )
        raise InvalidInput(f"Nickel error{at}: {details['error']}", details=details)
    return answer["value"]


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
