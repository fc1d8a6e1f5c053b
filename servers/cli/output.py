"""How the CLI shows results: JSON for scripts, tables for people, errors with a next step."""

from __future__ import annotations

import json
from typing import Any

_HINTS = {
    "invalid_input": "check the arguments: `{help}`",
    "payload_too_large": "send less data in one call",
    "not_found": "check the name; `prvng tools list` shows every operation",
    "unauthenticated": (
        "pass --api-key or set PRVNG_API_KEY (the bootstrap key is in "
        "PRVNG_HOME/credentials/admin-api-key)"
    ),
    "forbidden": "use an API key whose roles grant the permission named above",
    "conflict": "the object exists or changed meanwhile; look at its current state first",
    "approval_required": "an approver must grant the operation; the details name the request",
    "rate_limited": "wait as long as the message says; an admin can raise PRVNG_RATE_LIMITS",
    "unavailable": "is the platform running? `prvng platform status` tells",
    "internal": "a bug or a broken dependency; the platform log has the trace id",
}
_MAX_DETAIL_CHARS = 200


def dump_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def format_table(columns: list[str], rows: list[dict[str, Any]]) -> str:
    """Left-aligned columns under an upper-case header."""
    cells = [[_cell(row.get(col)) for col in columns] for row in rows]
    widths = [max([len(col), *(len(line[i]) for line in cells)]) for i, col in enumerate(columns)]
    lines = [[col.upper() for col in columns], *cells]
    return "\n".join(
        "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def _objects_table(items: list[dict[str, Any]]) -> str:
    columns: list[str] = []
    for item in items:
        columns.extend(key for key in item if key not in columns)
    scalar = [col for col in columns if all(_is_scalar(item.get(col)) for item in items)]
    return format_table(scalar or columns, items) if items else "(none)"


def _is_objects(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, dict) for item in value)


def _page_footer(data: dict[str, Any], shown: int, args: dict[str, Any]) -> list[str]:
    """How far the page goes, and the option that fetches the next one."""
    if "next_cursor" in data:
        cursor = data["next_cursor"]
        return [] if cursor is None else [f"next page: --cursor {cursor}"]
    total = data["total"]
    after = int(args.get("offset") or 0) + shown
    return [f"{total} total — next page: --offset {after}" if after < total else f"{total} total"]


def as_table(data: Any, args: dict[str, Any] | None = None) -> str:
    """Lists of objects (beside scalars only) → a table of scalar columns each (titled when
    there are several), then the other fields; a page says how to get the next one
    (`args` are the call's, for its offset). Otherwise key/value rows."""
    if _is_objects(data):
        return _objects_table(data)
    if isinstance(data, dict):
        lists = [key for key, value in data.items() if _is_objects(value)]
        rest = {key: value for key, value in data.items() if key not in lists}
        if lists and all(_is_scalar(value) for value in rest.values()):
            if len(lists) == 1:
                parts = [_objects_table(data[lists[0]])]
            else:
                parts = [f"{key}:\n{_objects_table(data[key])}" for key in lists]
            footer = []
            if "next_cursor" in rest or "total" in rest:
                shown = len(data[lists[0]])
                footer = _page_footer(rest, shown, args or {})
                rest = {k: v for k, v in rest.items() if k not in ("next_cursor", "total")}
            footer = [f"{key}: {_cell(value)}" for key, value in rest.items()] + footer
            return "\n\n".join([*parts, "\n".join(footer)] if footer else parts)
        rows = [{"key": key, "value": value} for key, value in data.items()]
        return format_table(["key", "value"], rows)
    if isinstance(data, list):
        return "\n".join(_cell(item) for item in data)
    return _cell(data)


def is_plan(data: Any) -> bool:
    return isinstance(data, dict) and data.get("kind") == "plan"


_SIGNS = {"create": "+", "update": "~", "delete": "-", "no-op": "="}


def _labels(change: dict[str, Any]) -> str:
    labels = (change.get("after") or change.get("before") or {}).get("labels") or {}
    return f" ({', '.join(f'{k}={v}' for k, v in sorted(labels.items()))})" if labels else ""


def render_plan(plan: dict[str, Any]) -> str:
    """A plan as Terraform shows one: a line per change, the counts, the digests."""
    changes = plan.get("changes") or []
    lines = [f"{plan.get('op')} would run workflow {plan['workflow'].get('name')!r}:"]
    lines += [
        f"  {_SIGNS.get(c['action'], '?')} {c['kind']} {c['name']}{_labels(c)}" for c in changes
    ] or ["  (no resource changes)"]
    count = {action: sum(c["action"] == action for c in changes) for action in _SIGNS}
    lines += [
        "",
        f"Plan: {count['create']} to add, {count['update']} to change, "
        f"{count['delete']} to destroy.",
        f"digest: {plan.get('digest')}",
        f"state digest: {plan.get('state_digest')}",
    ]
    return "\n".join(lines)


def render_data(data: Any, output: str, args: dict[str, Any] | None = None) -> str:
    if output != "table":
        return dump_json(data)
    return render_plan(data) if is_plan(data) else as_table(data, args)


def _details(details: dict[str, Any], message: str) -> list[str]:
    errors = details.get("errors")
    if isinstance(errors, list):
        lines = [
            f"{e.get('loc', '?')}: {e.get('msg', '')}" if isinstance(e, dict) else str(e)
            for e in errors[:10]
        ]
        return [f"  - {line}" for line in lines if line not in message]
    lines = []
    for key, value in list(details.items())[:8]:
        text = _cell(value)
        if len(text) > _MAX_DETAIL_CHARS:
            text = text[: _MAX_DETAIL_CHARS - 3] + "..."
        lines.append(f"  {key}: {text}")
    return lines


def render_failure(envelope: dict[str, Any], *, as_json: bool, help_command: str) -> str:
    """The failure envelope as one JSON document, or `error[code]: message` with a hint."""
    if as_json:
        return json.dumps(envelope, ensure_ascii=False, separators=(",", ":"))
    error = envelope.get("error") or {}
    code = str(error.get("code", "internal"))
    message = str(error.get("message", ""))
    lines = [f"error[{code}]: {message}"]
    details = error.get("details")
    if isinstance(details, dict):
        lines.extend(_details(details, message))
    hint = _HINTS.get(code)
    if hint and "`prvng " not in message:  # the message already names the next step
        lines.append("hint: " + hint.format(help=help_command))
    lines.append(f"trace: {envelope.get('trace_id', '-')}")
    return "\n".join(lines)
