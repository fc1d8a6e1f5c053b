"""`config.export`, `config.validate` and `config.list`: the workspace's Nickel
configuration as JSON, and which files it has."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from pydantic import Field

from daemons.common.settings import Settings
from daemons.ncl_sync import ConfigCache
from registry import ContractCase, RestAlias, Risk, StrictModel, ToolContext, ToolSpec
from tools.config.nickel import evaluate

PATH_FIELD = Field(
    description="A .ncl file, relative to the workspace config dir (PRVNG_CONFIG)",
    min_length=1,
    max_length=512,
)


class ConfigPathInput(StrictModel):
    path: str = PATH_FIELD


class ExportOutput(StrictModel):
    path: str
    value: Any = Field(description="The file's evaluated value, as JSON")


class ValidateOutput(StrictModel):
    path: str
    valid: bool
    top_level_fields: list[str] = Field(description="Fields of the value when it is a record")


async def export(args: ConfigPathInput, ctx: ToolContext) -> ExportOutput:
    settings = await ctx.resource(Settings)
    return ExportOutput(
        path=args.path,
        value=await evaluate(await ctx.resource(ConfigCache), settings.config_dir, args.path),
    )


async def validate(args: ConfigPathInput, ctx: ToolContext) -> ValidateOutput:
    settings = await ctx.resource(Settings)
    value = await evaluate(await ctx.resource(ConfigCache), settings.config_dir, args.path)
    fields = sorted(value) if isinstance(value, dict) else []
    return ValidateOutput(path=args.path, valid=True, top_level_fields=fields)


MAX_FILES = 500


class ListInput(StrictModel):
    prefix: str = Field(
        default="", max_length=512, description="Only paths starting with this (`examples/`)"
    )


class ConfigFiles(StrictModel):
    paths: list[str] = Field(description="`.ncl` files, relative to the workspace, sorted")
    truncated: bool = Field(description=f"More than {MAX_FILES} matched")


def _ncl_files(root: Path, prefix: str) -> list[str]:
    """Workspace `.ncl` files under `root` (no symlinked file leaving it), by prefix."""
    root = root.resolve()
    found = []
    for path in root.rglob("*.ncl"):
        relative = path.relative_to(root).as_posix()
        if relative.startswith(prefix) and path.resolve().is_relative_to(root):
            found.append(relative)
    return sorted(found)


async def list_files(args: ListInput, ctx: ToolContext) -> ConfigFiles:
    settings = await ctx.resource(Settings)
    paths = await asyncio.to_thread(_ncl_files, settings.config_dir, args.prefix)
    return ConfigFiles(paths=paths[:MAX_FILES], truncated=len(paths) > MAX_FILES)


_ERROR_CASES = (
    ContractCase("missing file", {"path": "nope.ncl"}, expect="not_found"),
    ContractCase("outside the workspace", {"path": "../pyproject.ncl"}, expect="invalid_input"),
)

TOOLS = [
    ToolSpec(
        name="config.export",
        summary="Evaluate a workspace Nickel file and return its JSON value",
        description=(
            "Evaluates the file with its imports (confined to the workspace) through the "
            "config cache. An import outside the workspace is forbidden. On a "
            "Nickel error the call fails with invalid_input; details carry Nickel's own "
            "message and the file, line and column."
        ),
        input_model=ConfigPathInput,
        output_model=ExportOutput,
        handler=export,
        permission="config:read",
        risk=Risk.READ,
        idempotent=True,
        rest=RestAlias("POST", "/v1/config/export"),
        tags=("config",),
        cases=(
            ContractCase("workspace", {"path": "workspace.ncl"}),
            ContractCase(
                "nickel error", {"path": "examples/invalid-port.ncl"}, expect="invalid_input"
            ),
            *_ERROR_CASES,
        ),
    ),
    ToolSpec(
        name="config.validate",
        summary="Check that a workspace Nickel file evaluates and meets its contracts",
        description=(
            "Succeeds when the file evaluates cleanly; fails with invalid_input carrying "
            "Nickel's error and its file/line/column otherwise (so scripts can rely on the "
            "exit code)."
        ),
        input_model=ConfigPathInput,
        output_model=ValidateOutput,
        handler=validate,
        permission="config:read",
        risk=Risk.READ,
        idempotent=True,
        rest=RestAlias("POST", "/v1/config/validate"),
        tags=("config",),
        cases=(
            ContractCase("valid workspace", {"path": "workspace.ncl"}),
            ContractCase(
                "contract violation", {"path": "examples/invalid-port.ncl"}, expect="invalid_input"
            ),
            *_ERROR_CASES,
        ),
    ),
    ToolSpec(
        name="config.list",
        summary="List the workspace's Nickel files (paths for config.export)",
        input_model=ListInput,
        output_model=ConfigFiles,
        handler=list_files,
        permission="config:read",
        risk=Risk.READ,
        idempotent=True,
        rest=RestAlias("GET", "/v1/config/files"),
        tags=("config",),
        cases=(
            ContractCase("every file"),
            ContractCase("examples only", {"prefix": "examples/"}),
        ),
    ),
]
