"""`OpsGate`: the seam workflow-starting tools call through their resources.

The keeper satisfies it in process; a client of a remote keeper would too. `OpsHandle`
is the concrete resource key (a protocol cannot key the registry's resources).
`require_published` turns a decision into what a tool answers: go on, `approval_required`
with the op id, or `forbidden`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from daemons.ops.model import OpDecision, OpInfo, OpRequest, OpStatus
from registry.errors import ApprovalRequired, Conflict, Forbidden
from registry.principal import Principal


class OpsGate(Protocol):
    async def request(
        self, op: OpRequest, requester: Principal, trace_id: str = "", op_id: str | None = None
    ) -> OpDecision: ...

    async def approve(self, op_id: str, approver: Principal, trace_id: str = "") -> OpDecision: ...

    async def reject(
        self, op_id: str, approver: Principal, reason: str = "", trace_id: str = ""
    ) -> OpDecision: ...

    async def cancel(self, op_id: str, actor: Principal, trace_id: str = "") -> OpDecision: ...

    async def get(self, op_id: str) -> OpDecision: ...

    async def op(self, op_id: str) -> OpRequest:
        """What was requested: the op as the keeper recorded it."""
        ...

    async def refuse_stale(
        self, op_id: str, approver: Principal, reason: str, trace_id: str = ""
    ) -> None:
        """Record (audit) an approval refused because the op's plan went stale."""
        ...

    async def describe(self, op_id: str) -> OpInfo: ...

    async def list(
        self,
        *,
        status: OpStatus | None = None,
        op_type: str | None = None,
        requester: str | None = None,
        limit: int = 50,
        start: int = 0,
    ) -> list[OpInfo]: ...

    def jwks(self) -> dict[str, Any]: ...


class OpsLedger(Protocol):
    """The executor's record of an op (`op:<jti>`: state, detail), None before dispatch."""

    async def get(self, jti: str) -> dict[str, Any] | None: ...


@dataclass(frozen=True, slots=True)
class OpsHandle:
    gate: OpsGate
    ledger: OpsLedger | None = None
    location: str = "in process"


def require_published(decision: OpDecision) -> OpDecision:
    """The decision when the op is on its way to the controller; otherwise the error a
    tool answers (nothing ran)."""
    details = {"op_id": decision.op_id, "rule": decision.rule, "status": decision.status.value}
    if decision.status is OpStatus.PUBLISHED:
        return decision
    if decision.status is OpStatus.PENDING:
        raise ApprovalRequired(
            f"{decision.op_id} waits for {decision.approvals_needed} approver(s) with a role "
            f"in {decision.approver_roles} (not you) until {decision.expires_at}: "
            f"`ops.approve op_id={decision.op_id}`",
            details=details,
        )
    if decision.status is OpStatus.DENIED:
        raise Forbidden(
            f"policy rule {decision.rule!r} denies this op; nothing ran", details=details
        )
    raise Conflict(f"{decision.op_id} is {decision.status.value}; nothing ran", details=details)
