"""One Nickel export through the `nickel` binding, with Nickel's diagnostics on failure."""

from __future__ import annotations

import re
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

from registry.errors import InvalidInput

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_LOCATION = re.compile(r"┌─\s*(?P<file>[^\n]+?):(?P<line>\d+):(?P<column>\d+)")
_FIRST_LINE = re.compile(r"^error:\s*(?P<title>.+)$", re.MULTILINE)


@cache
def nickel_version() -> str:
    """Part of every cache key: another Nickel may evaluate the same file differently."""
    return version("py-nickel")


def _primary_location(text: str) -> re.Match[str] | None:
    """The location Nickel marks with `^^^` (the offending expression), else the first one."""
    matches = list(_LOCATION.finditer(text))
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        if re.search(r"│\s*\^", text[match.end() : end]):
            return match
    return matches[0] if matches else None


def diagnostic(message: str, workspace: Path) -> dict[str, Any]:
    """Nickel's message as details: the error title, and file/line/column where it has one."""
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
        details["nickel_error"] = text.replace(str(root) + "/", "")
    return details


def export_json(target: Path, workspace: Path, search: tuple[Path, ...]) -> str:
    """The JSON text of `target`; `InvalidInput` carrying Nickel's error otherwise."""
    import nickel

    try:
        return str(nickel.run(f'import "{target}"', [str(p) for p in search]))
    except nickel.NickelException as exc:
        details = diagnostic(str(exc), workspace)
        where = (
            f"{details['file']}:{details['line']}:{details['column']}" if "file" in details else ""
        )
        raise InvalidInput(
            f"Nickel error{' at ' + where if where else ''}: {details['error']}",
            details=details,
        ) from None
