"""Evaluate a workspace's Nickel file to JSON, with Nickel's own diagnostics on failure."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

from registry.errors import InvalidInput, NotFound

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_LOCATION = re.compile(r"┌─\s*(?P<file>[^\n]+?):(?P<line>\d+):(?P<column>\d+)")
_FIRST_LINE = re.compile(r"^error:\s*(?P<title>.+)$", re.MULTILINE)


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


def _primary_location(text: str) -> re.Match[str] | None:
    """The location Nickel marks with `^^^` (the offending expression), else the first one."""
    matches = list(_LOCATION.finditer(text))
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        if re.search(r"│\s*\^", text[match.end() : end]):
            return match
    return matches[0] if matches else None


def _diagnostic(message: str, workspace: Path) -> dict[str, Any]:
    text = _ANSI.sub("", message).strip()
    details: dict[str, Any] = {"nickel_error": text}
    title = _FIRST_LINE.search(text)
    details["error"] = title.group("title").strip() if title else text.splitlines()[0]
    location = _primary_location(text)
    if location:
        file = Path(location.group("file"))
        root = workspace.resolve()
        details["file"] = str(file.relative_to(root)) if file.is_relative_to(root) else str(file)
        details["line"] = int(location.group("line"))
        details["column"] = int(location.group("column"))
        text = text.replace(str(root) + "/", "")
        details["nickel_error"] = text
    return details


def _evaluate(target: Path, workspace: Path) -> Any:
    import nickel

    try:
        out = nickel.run(f'import "{target}"', [str(workspace), str(target.parent)])
    except nickel.NickelException as exc:
        details = _diagnostic(str(exc), workspace)
        where = (
            f"{details['file']}:{details['line']}:{details['column']}" if "file" in details else ""
        )
        raise InvalidInput(
            f"Nickel error{' at ' + where if where else ''}: {details['error']}",
            details=details,
        ) from None
    return json.loads(out)


async def evaluate(workspace: Path, path: str) -> Any:
    """Evaluate `path` (relative to the workspace) off the event loop."""
    return await asyncio.to_thread(_resolve_and_evaluate, workspace, path)


def _resolve_and_evaluate(workspace: Path, path: str) -> Any:
    return _evaluate(resolve_workspace_file(workspace, path), workspace.resolve())
