"""The platform's one timestamp format: ISO 8601 in UTC with milliseconds and a `Z`
(`2026-11-29T10:03:58.646Z`), so every tier, view and record shows the same text."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def iso_utc(ts: float) -> str:
    """A Unix timestamp as the platform's timestamp text."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_utc_or_none(ts: float | None) -> str | None:
    return None if ts is None else iso_utc(ts)


def utc_now_iso() -> str:
    """Now, as the platform's timestamp text."""
    return iso_utc(time.time())
