"""JSON Schemas for tool inputs and outputs, self-contained (no `$ref`s).

Inlined schemas can be embedded anywhere (an OpenAPI operation, a CLI parser) without a
shared `$defs` section. They say exactly what validation accepts. The compact forms are
the same schemas for a reader who pays per byte (an assistant's tool listing): no
titles, `type` lists for plain nullable types, and, in outputs, subschemas repeated
within a tool shared through `$defs` (inputs stay inlined: some clients cannot follow a
`$ref` in the schema they fill). `inline_refs` of a compact schema is the full one less
those annotations.
"""

from __future__ import annotations

import json
from collections import Counter
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


# -- compact forms ---------------------------------------------------------------------

_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "dependentSchemas"})
_SCHEMA_VALUES = frozenset(
    {
        "items",
        "additionalProperties",
        "propertyNames",
        "contains",
        "not",
        "if",
        "then",
        "else",
        "unevaluatedItems",
        "unevaluatedProperties",
    }
)
_SCHEMA_LISTS = frozenset({"anyOf", "allOf", "oneOf", "prefixItems"})
_NOTES = ("description", "default")
"""Annotations a shared subschema keeps beside its `$ref` (they differ between uses)."""


def _children(node: dict[str, Any]) -> list[Any]:
    """The subschemas directly under `node` (not its data: enums, defaults, consts)."""
    found: list[Any] = []
    for key, value in node.items():
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            found += value.values()
        elif key in _SCHEMA_VALUES:
            found.append(value)
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            found += value
    return found


def _map_children(node: dict[str, Any], fn: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: fn(child) for name, child in value.items()}
        elif key in _SCHEMA_VALUES:
            out[key] = fn(value)
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            out[key] = [fn(child) for child in value]
        else:
            out[key] = value
    return out


def _plain(node: Any, drop: frozenset[str], *, open_objects: bool = False) -> Any:
    """`node` without the keys in `drop`, no-op keywords and null defaults; with
    `open_objects`, without `additionalProperties: false` either (outputs may grow)."""
    if not isinstance(node, dict):
        return node
    out = _map_children(
        {k: v for k, v in node.items() if k not in drop},
        lambda c: _plain(c, drop, open_objects=open_objects),
    )
    if "unevaluatedProperties" not in out and (
        out.get("additionalProperties") is True
        or (open_objects and out.get("additionalProperties") is False)
    ):
        del out["additionalProperties"]
    if "default" in out and out["default"] is None:
        del out["default"]  # an optional field's absence, said again
    branches = out.get("anyOf")
    if (
        isinstance(branches, list)
        and len(branches) > 1
        and all(isinstance(b, dict) and list(b) == ["type"] for b in branches)
        and "type" not in out
    ):
        # `anyOf: [{type: string}, {type: null}]` says no more than `type: [string, null]`.
        types = [b["type"] for b in branches]
        if all(isinstance(t, str) for t in types) and len(set(types)) == len(types):
            out = {
                ("type" if k == "anyOf" else k): (types if k == "anyOf" else v)
                for k, v in out.items()
            }
    return out


def _text(node: Any) -> str:
    return json.dumps(node, sort_keys=True, separators=(",", ":"))


def _core(node: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in node.items() if k not in _NOTES and k != "title"}


def _walk(node: Any, into: list[dict[str, Any]]) -> None:
    if isinstance(node, dict):
        into.append(node)
        for child in _children(node):
            _walk(child, into)


def _best_repeat(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any] | None:
    """The repeated subschema (annotations aside) whose sharing saves the most bytes."""
    nodes: list[dict[str, Any]] = []
    for top in (schema, *defs.values()):
        for child in _children(top):
            _walk(child, nodes)
    counts = Counter(_text(_core(node)) for node in nodes)
    firsts: dict[str, dict[str, Any]] = {}
    for node in nodes:
        firsts.setdefault(_text(_core(node)), node)
    best, saving = None, 0
    for text, count in counts.items():
        gain = (count - 1) * len(text) - count * _REF_COST
        if count > 1 and gain > saving:
            best, saving = firsts[text], gain
    return best


_REF_COST = 40
"""Bytes a `{"$ref": "#/$defs/Name"}` costs, about."""


def _share(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with each subschema that repeats defined once in `$defs`, while that
    saves bytes; a definition is named after its model's title where it has one."""
    defs: dict[str, Any] = {}
    while (best := _best_repeat(schema, defs)) is not None:
        title = best.get("title")
        base = title if isinstance(title, str) and title.isidentifier() else "Shared"
        name, suffix = base, 1
        while name in defs:
            suffix += 1
            name = f"{base}{suffix}"
        core = _core(best)
        wanted = _text(core)

        def swap(node: Any, wanted: str = wanted, ref: str = f"#/$defs/{name}") -> Any:
            if not isinstance(node, dict):
                return node
            if _text(_core(node)) == wanted:
                return {"$ref": ref, **{k: node[k] for k in _NOTES if k in node}}
            return _map_children(node, swap)

        schema = _map_children(schema, swap)
        defs = {key: _map_children(value, swap) for key, value in defs.items()}
        defs[name] = _map_children(core, swap)
    return {**schema, "$defs": defs} if defs else schema


def inline_refs(node: Any, defs: dict[str, Any] | None = None) -> Any:
    """`node` with its local `$defs` references inlined: the inverse of sharing."""
    if defs is None:
        defs = node.get("$defs", {}) if isinstance(node, dict) else {}
    if isinstance(node, list):
        return [inline_refs(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target = inline_refs(defs[ref.removeprefix("#/$defs/")], defs)
        return {**target, **{k: inline_refs(v, defs) for k, v in node.items() if k != "$ref"}}
    return {k: inline_refs(v, defs) for k, v in node.items() if k != "$defs"}


@cache
def compact_input_schema(model: type[BaseModel]) -> dict[str, Any]:
    """`input_schema(model)` without titles; descriptions and defaults stay (a caller
    needs them), and there is no `$ref` to follow."""
    plain: dict[str, Any] = _plain(input_schema(model), frozenset({"title"}))
    return plain


@cache
def compact_output_schema(model: type[BaseModel]) -> dict[str, Any]:
    """`output_schema(model)` without titles, descriptions and defaults (the full schema
    keeps them, for the tool's docs) and open to new fields (a client holding an older
    listing must not refuse a newer answer); repeated parts shared."""
    notes = frozenset({"default", "description"})
    shared = _share(_plain(output_schema(model), notes, open_objects=True))
    plain: dict[str, Any] = _plain(shared, frozenset({"title"}))
    return plain
