"""A workspace's Nickel file as JSON, read through ncl-sync's cache (imports confined to it)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from daemons.ncl_sync import ConfigCache
from registry.errors import InvalidInput, NotFound


def resolve_workspace_file(workspace: Path, path: str) -> Path:
    """The absolute path of a `.ncl` file inside the workspace; refuses anything outside."""
    if not path.endswith(".ncl"):
        raise InvalidInput(f"{path!r} is not a Nickel file (expected a .ncl path)")
    if any(ch in path for ch in ('"', "%", "\n")):
        raise InvalidInput(f"{path!r} contains characters not allowed in a config path")
    root = workspace.resolve()
    target = (root / path).resolve()
    if not target.is_relative_to(root):
        raise InvalidInput(
            f"{path!r} is outside the workspace {root}; give a path relative to it",
            details={"workspace": str(root)},
        )
    if not target.is_file():
        raise NotFound(
            f"no config file {path!r} in the workspace {root}",
            details={"path": path, "workspace": str(root)},
        )
    return target


async def evaluate(cache: ConfigCache, workspace: Path, path: str) -> Any:
    """Evaluate `path` (relative to the workspace) through the config cache, off the loop."""
    return await asyncio.to_thread(_read, cache, workspace, path)


def _read(cache: ConfigCache, workspace: Path, path: str) -> Any:
    return cache.read(workspace.resolve(), resolve_workspace_file(workspace, path))
