"""The envelope every tier returns: `{ok, data | error, trace_id, timestamp}`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from registry.errors import ErrorCode, PlatformError, exit_code, http_status
from registry.timestamps import utc_now_iso


@dataclass(slots=True)
class Envelope:
    """The result of one invocation, success or failure."""

    ok: bool
    trace_id: str
    timestamp: str
    data: Any = None
    error: dict[str, Any] | None = None

    @classmethod
    def success(cls, data: Any, trace_id: str) -> Envelope:
        return cls(ok=True, data=data, trace_id=trace_id, timestamp=utc_now_iso())

    @classmethod
    def failure(cls, err: PlatformError, trace_id: str) -> Envelope:
        return cls(ok=False, error=err.to_dict(), trace_id=trace_id, timestamp=utc_now_iso())

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> Envelope:
        return cls(
            ok=bool(body.get("ok")),
            data=body.get("data"),
            error=body.get("error"),
            trace_id=str(body.get("trace_id", "")),
            timestamp=str(body.get("timestamp", "")),
        )

    @property
    def code(self) -> str | None:
        """The error code, or None on success."""
        return None if self.error is None else str(self.error.get("code"))

    @property
    def http_status(self) -> int:
        return 200 if self.ok else http_status(self.code or ErrorCode.INTERNAL)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else exit_code(self.code or ErrorCode.INTERNAL)

    def raise_for_error(self) -> Any:
        """The data, or the matching `PlatformError` raised."""
        if self.ok:
            return self.data
        raise PlatformError.from_dict(self.error or {})

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": self.ok}
        if self.ok:
            body["data"] = self.data
        else:
            body["error"] = self.error
        body["trace_id"] = self.trace_id
        body["timestamp"] = self.timestamp
        return body
