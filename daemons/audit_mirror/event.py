"""One audit event as the mirror stores it: a file name, canonical bytes and a message.

Everything here is derived from the event alone, so a redelivered event maps to the same
path and the same bytes. The message names op, outcome, actor, jti and trace id, and
ends in trailers; `Event-Sha256` binds the commit to its file's content.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from registry.canonical import canonical_json
from registry.errors import InvalidInput

EVENTS_DIR = "events"
SAFE_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,199}$")
SHA_TRAILER = "Event-Sha256"
ID_TRAILER = "Event-Id"
_TRAILERS = (("Op", ("op_type", "op", "tool")), ("Outcome", ("outcome",)), ("Actor", ("actor",)))


@dataclass(frozen=True, slots=True)
class EventRecord:
    """What one commit adds: `path` (`events/YYYY/MM/DD/<key>.json`) holding `content`."""

    key: str
    """The file's stem: the event id where it is a safe file name, else its SHA-256."""
    day: tuple[str, str, str]
    content: bytes
    message: str

    @property
    def name(self) -> str:
        return f"{self.key}.json"

    @property
    def path(self) -> str:
        return "/".join((EVENTS_DIR, *self.day, self.name))

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


def file_key(event_id: str) -> str:
    """The dedup key and file stem of an event id (deterministic, never a path)."""
    if SAFE_ID.match(event_id) and not event_id.endswith(".json"):
        return event_id
    return "sha256-" + hashlib.sha256(event_id.encode()).hexdigest()


def _day(value: Any, fallback: datetime) -> tuple[str, str, str]:
    when = fallback
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            when = fallback
    when = when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    return f"{when.year:04d}", f"{when.month:02d}", f"{when.day:02d}"


def _line(value: Any) -> str:
    """A trailer value: one line, never empty."""
    text = " ".join(str(value).split()) if value not in (None, "") else "-"
    return text[:500]


def _first(event: dict[str, Any], names: tuple[str, ...]) -> Any:
    return next((event[n] for n in names if event.get(n) not in (None, "")), None)


def parse_event(data: bytes, msg_id: str | None, published: datetime) -> EventRecord:
    """The record of one message body; `InvalidInput` when it is no JSON object with an id
    (neither an `id` field nor a `Nats-Msg-Id` header)."""
    try:
        event = json.loads(data)
    except ValueError as exc:
        raise InvalidInput(f"audit event is not JSON: {exc}") from exc
    if not isinstance(event, dict):
        raise InvalidInput("audit event is not a JSON object")
    event_id = event.get("id") or msg_id
    if not isinstance(event_id, str) or not event_id:
        raise InvalidInput("audit event has no id (field `id` or header Nats-Msg-Id)")
    content = canonical_json(event) + b"\n"
    record = EventRecord(file_key(event_id), _day(event.get("at"), published), content, "")
    fields = {name: _line(_first(event, keys)) for name, keys in _TRAILERS}
    trailers = {
        ID_TRAILER: _line(event_id),
        **fields,
        "Jti": _line(_first(event, ("op_id", "jti"))),
        "Trace-Id": _line(event.get("trace_id")),
        "Event-Path": record.path,
        SHA_TRAILER: record.sha256,
    }
    subject = f"audit: {fields['Op']} {fields['Outcome']} by {fields['Actor']}"
    body = "\n".join(f"{k}: {v}" for k, v in trailers.items())
    return EventRecord(record.key, record.day, content, f"{subject}\n\n{body}\n")
