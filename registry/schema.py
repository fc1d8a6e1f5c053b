"""JSON Schemas for tool inputs and outputs, self-contained (no `$ref`s).

Inlined schemas can be embedded anywhere (an MCP tool, an OpenAPI operation, a CLI
parser) without a shared `$defs` section. They say exactly what validation accepts.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Literal

from pydantic import BaseModel


def _inline(node: Any, defs: dict[str, Any], seen: tuple[str, ...]) -> Any:
    if isinstance(node, list):
        return [_inline(item, defs, seen) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        name = ref.removeprefix("#/$defs/")
        if name in seen:
            raise ValueError(f"recursive schema {name!r} cannot be inlined")
        target = _inline(defs[name], defs, (*seen, name))
        siblings = {k: _inline(v, defs, seen) for k, v in node.items() if k != "$ref"}
        return {**target, **siblings}
    inlined = {k: _inline(v, defs, seen) for k, v in node.items() if k != "$defs"}
    if "patternProperties" in inlined and "additionalProperties" not in inlined:
        # A map with constrained keys (`dict[LabelKey, str]`): pydantic refuses any other
        # key, so the schema says so (JSON Schema would let other keys hold anything).
        inlined["additionalProperties"] = False
    return inlined


def _schema(model: type[BaseModel], mode: Literal["validation", "serialization"]) -> dict[str, Any]:
    raw = model.model_json_schema(mode=mode)
    schema: dict[str, Any] = _inline(raw, raw.get("$defs", {}), ())
    return schema


@cache
def input_schema(model: type[BaseModel]) -> dict[str, Any]:
    """What a caller may send (JSON Schema 2020-12, validation mode, refs inlined)."""
    return _schema(model, "validation")


@cache
def output_schema(model: type[BaseModel]) -> dict[str, Any]:
    """What a tool answers (serialization mode, refs inlined)."""
    return _schema(model, "serialization")
