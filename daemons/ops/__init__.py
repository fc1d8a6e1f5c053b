"""The ops plane's shared contract: ops, claims, audit events, keys and the gate seam.

Keeper and controller never import each other; both import this, and talk over NATS.
"""

from daemons.ops.audit import AuditEvent, AuditPublisher, Outcome
from daemons.ops.gate import OpsGate, OpsHandle, require_published
from daemons.ops.keyring import KeyRing, verification_keys
from daemons.ops.model import (
    Decision,
    OpDecision,
    OpInfo,
    OpMessage,
    OpPlan,
    OpRequest,
    OpsClaims,
    OpStatus,
    OpTarget,
)

__all__ = [
    "AuditEvent",
    "AuditPublisher",
    "Decision",
    "KeyRing",
    "OpDecision",
    "OpInfo",
    "OpMessage",
    "OpPlan",
    "OpRequest",
    "OpStatus",
    "OpTarget",
    "OpsClaims",
    "OpsGate",
    "OpsHandle",
    "Outcome",
    "require_published",
    "verification_keys",
]
