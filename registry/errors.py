"""The platform's one error enum, its exception tree and its wire mapping table.

Every tier reports failures with the same `code`; this module is the only place that
says which HTTP status, CLI exit code and MCP shape a code becomes.

    PlatformError (code, message, details)
     ├── InvalidInput            invalid_input          422  exit 2
     │    ├── PayloadTooLarge    payload_too_large      413  exit 2
     │    ├── UnsupportedMediaType unsupported_media_type 415 exit 2
     │    └── MethodNotAllowed   method_not_allowed     405  exit 2
     ├── NotFound (LookupError)  not_found              404  exit 3
     ├── Unauthenticated         unauthenticated        401  exit 4
     ├── Forbidden (PermissionError) forbidden          403  exit 4
     ├── Conflict                conflict               409  exit 5
     ├── ApprovalRequired        approval_required      202  exit 6
     ├── RateLimited             rate_limited           429  exit 7
     ├── Unavailable (ConnectionError) unavailable      503  exit 8
     │    └── Timeout (TimeoutError)                    503  exit 8
     ├── Internal                internal               500  exit 1
     ├── WorkflowFailed          workflow_failed        409  exit 9
     └── StillRunning            still_running          202  exit 10

The last two answer a call that waited for a workflow: it ended without succeeding, or
the wait ran out while it goes on; `details` is the workflow's view either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar


class ErrorCode(StrEnum):
    """The error codes every tier shares."""

    INVALID_INPUT = "invalid_input"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    NOT_FOUND = "not_found"
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"
    CONFLICT = "conflict"
    APPROVAL_REQUIRED = "approval_required"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"
    WORKFLOW_FAILED = "workflow_failed"
    STILL_RUNNING = "still_running"


@dataclass(frozen=True, slots=True)
class WireMapping:
    """How one error code appears on each wire."""

    http_status: int
    exit_code: int


ERROR_TABLE: dict[ErrorCode, WireMapping] = {
    ErrorCode.INVALID_INPUT: WireMapping(422, 2),
    ErrorCode.PAYLOAD_TOO_LARGE: WireMapping(413, 2),
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: WireMapping(415, 2),
    ErrorCode.METHOD_NOT_ALLOWED: WireMapping(405, 2),
    ErrorCode.NOT_FOUND: WireMapping(404, 3),
    ErrorCode.UNAUTHENTICATED: WireMapping(401, 4),
    ErrorCode.FORBIDDEN: WireMapping(403, 4),
    ErrorCode.CONFLICT: WireMapping(409, 5),
    ErrorCode.APPROVAL_REQUIRED: WireMapping(202, 6),
    ErrorCode.RATE_LIMITED: WireMapping(429, 7),
    ErrorCode.UNAVAILABLE: WireMapping(503, 8),
    ErrorCode.INTERNAL: WireMapping(500, 1),
    ErrorCode.WORKFLOW_FAILED: WireMapping(409, 9),
    ErrorCode.STILL_RUNNING: WireMapping(202, 10),
}


def http_status(code: ErrorCode | str) -> int:
    """The HTTP status for an error code (500 for a code this build does not know)."""
    try:
        return ERROR_TABLE[ErrorCode(code)].http_status
    except ValueError:
        return 500


def exit_code(code: ErrorCode | str) -> int:
    """The CLI exit status for an error code (1 for a code this build does not know)."""
    try:
        return ERROR_TABLE[ErrorCode(code)].exit_code
    except ValueError:
        return 1


class PlatformError(Exception):
    """Base of every error the platform reports to a caller."""

    code: ClassVar[ErrorCode] = ErrorCode.INTERNAL

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}

    def to_dict(self) -> dict[str, Any]:
        """The `error` member of a failure envelope."""
        return {"code": self.code.value, "message": self.message, "details": self.details}

    @classmethod
    def from_dict(cls, error: dict[str, Any]) -> PlatformError:
        """Rebuild the right subclass from an envelope's `error` member (clients use this)."""
        code = str(error.get("code", ErrorCode.INTERNAL))
        err_cls = _BY_CODE.get(code, Internal)
        return err_cls(str(error.get("message", "")), details=dict(error.get("details") or {}))


class InvalidInput(PlatformError, ValueError):
    code = ErrorCode.INVALID_INPUT


class PayloadTooLarge(InvalidInput):
    code = ErrorCode.PAYLOAD_TOO_LARGE


class UnsupportedMediaType(InvalidInput):
    code = ErrorCode.UNSUPPORTED_MEDIA_TYPE


class MethodNotAllowed(InvalidInput):
    code = ErrorCode.METHOD_NOT_ALLOWED


class NotFound(PlatformError, LookupError):
    code = ErrorCode.NOT_FOUND


class Unauthenticated(PlatformError):
    code = ErrorCode.UNAUTHENTICATED


class Forbidden(PlatformError, PermissionError):
    code = ErrorCode.FORBIDDEN


class Conflict(PlatformError):
    code = ErrorCode.CONFLICT


class ApprovalRequired(PlatformError):
    code = ErrorCode.APPROVAL_REQUIRED


class RateLimited(PlatformError):
    """Over a budget; `details.retry_after_s` says when to try again."""

    code = ErrorCode.RATE_LIMITED

    def __init__(
        self, message: str, *, details: dict[str, Any] | None = None, summed: bool = False
    ) -> None:
        super().__init__(message, details=details)
        self.summed = summed
        """Counted into a summary audit record by the limiter, so not audited alone."""


class Unavailable(PlatformError, ConnectionError):
    code = ErrorCode.UNAVAILABLE


class Timeout(Unavailable, TimeoutError):
    """A backing service did not answer in time."""


class Internal(PlatformError):
    code = ErrorCode.INTERNAL


class WorkflowFailed(PlatformError):
    """The call waited for its workflow, which ended failed, cancelled or rolled back."""

    code = ErrorCode.WORKFLOW_FAILED


class StillRunning(PlatformError):
    """The call's wait ran out; the workflow goes on (wait for it again, or cancel it)."""

    code = ErrorCode.STILL_RUNNING


_BY_CODE: dict[str, type[PlatformError]] = {
    cls.code.value: cls
    for cls in (
        InvalidInput,
        PayloadTooLarge,
        UnsupportedMediaType,
        MethodNotAllowed,
        NotFound,
        Unauthenticated,
        Forbidden,
        Conflict,
        ApprovalRequired,
        RateLimited,
        Unavailable,
        Internal,
        WorkflowFailed,
        StillRunning,
    )
}
