"""A tool's input JSON Schema → the flags of its generated command, with their help.

`snake_case` fields become `--kebab-case`; booleans get `--flag/--no-flag`; objects take
`KEY=VALUE` (repeatable) or a JSON object; arrays take repeated values or a JSON array.
Unset flags are left out, so the tool's own defaults apply.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

from servers.cli.values import assign
from servers.coercion import UsageError, choices, coerce, item_schema, schema_types

FIELD_DEST = "field:"


def field_flag(name: str) -> str:
    flag = "--" + name.replace("_", "-")
    return f"--{name}-field" if flag == "--help" else flag


class _SchemaAction(argparse.Action):
    """Collects repeated values of an object or array field into one JSON value."""

    def __init__(self, *args: Any, schema: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.schema = schema

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        raw = str(values)
        try:
            setattr(namespace, self.dest, self.merge(getattr(namespace, self.dest, None), raw))
        except UsageError as exc:
            raise argparse.ArgumentError(self, str(exc)) from None

    def merge(self, current: Any, raw: str) -> Any:
        raise NotImplementedError


class _ObjectAction(_SchemaAction):
    def merge(self, current: Any, raw: str) -> Any:
        value: dict[str, Any] = dict(current or {})
        if raw.lstrip().startswith("{"):
            value.update(coerce(raw, {"type": "object"}))
            return value
        key, sep, text = raw.partition("=")
        if not sep or not key:
            raise UsageError(f"expected KEY=VALUE or a JSON object, got {raw!r}")
        assign(value, key, text, self.schema)
        return value


class _ArrayAction(_SchemaAction):
    def merge(self, current: Any, raw: str) -> Any:
        value: list[Any] = list(current or [])
        if raw.lstrip().startswith("["):
            value.extend(coerce(raw, {"type": "array"}))
        else:
            value.append(coerce(raw, item_schema(self.schema)))
        return value


def _scalar(schema: dict[str, Any]) -> Any:
    def convert(raw: str) -> Any:
        try:
            return coerce(raw, schema)
        except UsageError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def _bounds(schema: dict[str, Any]) -> str:
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    if low is not None and high is not None:
        return f" {low}..{high}"
    if low is not None:
        return f" >= {low}"
    return f" <= {high}" if high is not None else ""


def field_help(schema: dict[str, Any], required: bool) -> str:
    """Description, type, bounds and default (or `required`) of one field."""
    types = [t for t in schema_types(schema) if t != "null"]
    allowed = choices(schema)
    kind = "one of: " + ", ".join(map(str, allowed)) if allowed else "/".join(types) or "JSON"
    kind += _bounds(schema)
    if "object" in types:
        kind += "; KEY=VALUE, repeatable, or a JSON object"
    elif "array" in types:
        kind += "; repeatable, or a JSON array"
    if required:
        tail = " (required)"
    elif "default" in schema and schema["default"] not in (None, {}, []):
        tail = f" (default: {json.dumps(schema['default'])})"
    else:
        tail = ""
    text = schema.get("description") or schema.get("title") or ""
    return f"{text} [{kind}]{tail}".strip().replace("%", "%%")


def add_tool_arguments(parser: argparse.ArgumentParser, input_schema: dict[str, Any]) -> None:
    """One flag per property of the tool's input schema."""
    properties: dict[str, Any] = input_schema.get("properties") or {}
    if not properties:
        return
    required = set(input_schema.get("required") or ())
    group = parser.add_argument_group("fields (from the tool's input schema)")
    for name, schema in properties.items():
        types = set(schema_types(schema)) - {"null"}
        kwargs: dict[str, Any] = {
            "dest": FIELD_DEST + name,
            "default": argparse.SUPPRESS,
            "help": field_help(schema, name in required),
        }
        if types == {"boolean"}:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif "object" in types and "string" not in types:
            kwargs.update(action=_ObjectAction, schema=schema, metavar="KEY=VALUE")
        elif "array" in types and "string" not in types:
            kwargs.update(action=_ArrayAction, schema=schema, metavar="ITEM")
        else:
            metavar = {"integer": "N", "number": "X"}.get(next(iter(types), ""), name.upper())
            kwargs.update(type=_scalar(schema), metavar=metavar)
        group.add_argument(field_flag(name), **kwargs)


def tool_args(namespace: argparse.Namespace) -> dict[str, Any]:
    """The tool arguments given as flags (unset ones are absent)."""
    return {
        key.removeprefix(FIELD_DEST): value
        for key, value in vars(namespace).items()
        if key.startswith(FIELD_DEST)
    }
