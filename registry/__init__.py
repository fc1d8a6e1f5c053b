"""The tool registry: the tool model, the invocation pipeline, the envelope and errors.

It knows no wire format and no operation: tiers call `Registry.invoke`, and `tools/`
adds the operations.
"""

from registry.audit import AuditRecord, AuditSink, JsonlAuditSink
from registry.context import ToolContext
from registry.envelope import Envelope
from registry.errors import (
    ERROR_TABLE,
    ApprovalRequired,
    Conflict,
    ErrorCode,
    Forbidden,
    Internal,
    InvalidInput,
    NotFound,
    PlatformError,
    RateLimited,
    StillRunning,
    Timeout,
    Unauthenticated,
    Unavailable,
    WorkflowFailed,
)
from registry.listing import ToolInfo, ToolListing, listing_output_schema
from registry.model import (
    Call,
    ContractCase,
    RateClass,
    RestAlias,
    Risk,
    StrictModel,
    Target,
    ToolSpec,
)
from registry.principal import Principal, RoleAuthorizer
from registry.registry import Registry
from registry.resources import Resources

__all__ = [
    "ERROR_TABLE",
    "ApprovalRequired",
    "AuditRecord",
    "AuditSink",
    "Call",
    "Conflict",
    "ContractCase",
    "Envelope",
    "ErrorCode",
    "Forbidden",
    "Internal",
    "InvalidInput",
    "JsonlAuditSink",
    "NotFound",
    "PlatformError",
    "Principal",
    "RateClass",
    "RateLimited",
    "Registry",
    "Resources",
    "RestAlias",
    "Risk",
    "RoleAuthorizer",
    "StillRunning",
    "StrictModel",
    "Target",
    "Timeout",
    "ToolContext",
    "ToolInfo",
    "ToolListing",
    "ToolSpec",
    "Unauthenticated",
    "Unavailable",
    "WorkflowFailed",
    "listing_output_schema",
]
