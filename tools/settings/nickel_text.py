"""JSON values as Nickel text, for the configs the settings tools write.

A Nickel enum exports as a JSON string, so a round trip needs to know which fields are
enums: `ENUM_FIELDS` names them (the schemas' `[| ... |]` fields), and their string
values are written back as tags.
"""

from __future__ import annotations

import json
import re
from typing import Any

ENUM_FIELDS = frozenset({"provider", "decision"})
_IDENT = re.compile(r"[_a-zA-Z][_a-zA-Z0-9-]*")
_TAG = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*")
_KEYWORDS = frozenset(
    {
        "let",
        "in",
        "if",
        "then",
        "else",
        "fun",
        "match",
        "import",
        "null",
        "true",
        "false",
        "rec",
        "default",
        "optional",
        "doc",
        "force",
        "priority",
        "not_exported",
    }
)


def _string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False).replace("%", "\\%")


def _key(name: str) -> str:
    return name if _IDENT.fullmatch(name) and name not in _KEYWORDS else _string(name)


def render(value: Any, indent: int = 0, *, field: str | None = None) -> str:
    """`value` as Nickel source (records one field a line, short arrays on one line)."""
    pad = "  " * indent
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, str):
        if field in ENUM_FIELDS and _TAG.fullmatch(value):
            return f"'{value}"
        return _string(value)
    if isinstance(value, list):
        items = [render(item, indent + 1) for item in value]
        if not items:
            return "[]"
        if all("\n" not in item for item in items) and sum(map(len, items)) < 60:
            return "[" + ", ".join(items) + "]"
        inner = "".join(f"{pad}  {item},\n" for item in items)
        return f"[\n{inner}{pad}]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        fields = [
            f"{_key(str(k))} = {render(v, indent + 1, field=str(k))}" for k, v in value.items()
        ]
        if all("\n" not in f for f in fields) and sum(map(len, fields)) < 60:
            return "{ " + ", ".join(fields) + " }"
        inner = "".join(f"{pad}  {f},\n" for f in fields)
        return f"{{\n{inner}{pad}}}"
    raise TypeError(f"cannot write {type(value).__name__} as Nickel")


def workspace_text(value: dict[str, Any], comment: str, schema: str = "schemas/server.ncl") -> str:
    """A workspace file: a comment, the schema import, the record under `s.Workspace`."""
    lines = "".join(f"# {line}\n" for line in comment.splitlines())
    return f'{lines}let s = import "{schema}" in\n{render(value)} | s.Workspace\n'
