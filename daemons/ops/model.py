"""What an op is, what the keeper signs about it and what travels on `ops.pending.<type>`.

The token binds the op by digest: `params_digest` is the SHA-256 of the params' canonical
JSON, `plan_digest` that of the plan (the exact workflow and its listed changes). The
controller recomputes both from the message it received, so what was approved is what
runs. A big op's params and plan travel beside the message, by those digests
(`daemons.ops.bodies`): the message then carries an `OpRef`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import Field

from registry.canonical import sha256_digest
from registry.model import StrictModel

ISSUER = "prvng-keeper"
AUDIENCE = "prvng-controller"
TOKEN_TYPE = "ops+jwt"
ALGORITHM = "EdDSA"
OP_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
"""An op id (the token's jti): also the orchestrator's workflow id, so it has the workflow
id's shape: `op-<32 hex>` when the keeper picks it, the caller's workflow id otherwise."""


class OpTarget(StrictModel):
    """What an op acts on; policies match its name, provider and labels."""

    name: str = Field(min_length=1, max_length=253)
    provider: str = Field(default="", max_length=64)
    labels: dict[str, str] = Field(default_factory=dict)


class OpPlan(StrictModel):
    """What would run (`workflow`, a `WorkflowSpec` as JSON) and what it would change."""

    workflow: dict[str, Any]
    changes: list[dict[str, Any]] = Field(default_factory=list)
    state_digest: str = ""
    """The plan's `state_digest`: an approval is refused once the state moved ("" for an
    op whose tool records none)."""


class ControlTask(StrictModel):
    """One task of a recorded workflow as a control op's plan saw it."""

    id: str
    action: str
    params: dict[str, Any]
    state: str
    attempts: int
    compensate: dict[str, Any] | None = None


class ControlCommand(StrictModel):
    """The plan's `workflow` of a control op (retry, rollback): the command and the
    recorded workflow as it stood. The controller runs the command only while the
    workflow still stands so (`fingerprint`), so what was approved is what runs."""

    id: str
    """The recorded workflow's id (not the op's)."""
    name: str
    command: Literal["retry", "rollback"]
    state: str
    tasks: list[ControlTask]

    def fingerprint(self) -> dict[str, Any]:
        """What must not have moved: the workflow's state, each task's state and attempts."""
        return {"state": self.state, "tasks": {t.id: [t.state, t.attempts] for t in self.tasks}}


def control_command(plan: OpPlan) -> ControlCommand | None:
    """The command of a control op's plan; None for a plan that submits a workflow."""
    if "command" not in plan.workflow:
        return None
    return ControlCommand.model_validate(plan.workflow)


class OpRequest(StrictModel):
    """An op a tool asks the keeper to decide on."""

    type: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_.-]*$")
    target: OpTarget
    images: list[str] = Field(default_factory=list, max_length=256)
    """Server image, taskserv name or the workflow's action kinds: what policies call image."""
    risk: Literal["read", "write", "destructive"] = "write"
    params: dict[str, Any] = Field(default_factory=dict)
    plan: OpPlan
    second_user: bool = False
    """The requester may ask for this op but not run it alone (a Cedar `@approval` permit
    allowed it): the keeper holds it for an approver even where its rule auto-approves."""

    def params_digest(self) -> str:
        return sha256_digest(self.params)

    def plan_value(self) -> dict[str, Any]:
        """The plan as the JSON value its digest is taken of."""
        return {"changes": self.plan.changes, "workflow": self.plan.workflow}

    def plan_digest(self) -> str:
        return sha256_digest(self.plan_value())


class OpsClaims(StrictModel):
    """The claims of an approval token (a compact JWS, EdDSA)."""

    iss: str
    sub: str
    """The requester."""
    aud: str
    jti: str = Field(pattern=OP_ID_PATTERN)
    iat: int
    nbf: int
    exp: int
    op_type: str
    target: OpTarget
    params_digest: str
    plan_digest: str
    approvers: list[str]
    """Who approved (empty for an auto-approved op); never the requester."""
    rule: str
    """The policy rule that decided."""
    trace_id: str


class OpRef(StrictModel):
    """A big op in a message: all but its params and plan, which are stored by digest."""

    type: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_.-]*$")
    target: OpTarget
    images: list[str] = Field(default_factory=list, max_length=256)
    risk: Literal["read", "write", "destructive"] = "write"
    params_digest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    plan_digest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")


class OpMessage(StrictModel):
    """The body of a message on `ops.pending.<type>`: the token and the op, or (a big op)
    a reference to it."""

    token: str = Field(max_length=16_384)
    op: OpRequest | None = None
    ref: OpRef | None = None


class Decision(StrEnum):
    AUTO_APPROVE = "auto_approve"
    REQUIRE_APPROVAL = "require_approval"
    DENY = "deny"


class OpStatus(StrEnum):
    """An op as the keeper sees it."""

    PENDING = "pending"
    """Waiting for approvers."""
    APPROVED = "approved"
    """Signed; not yet acknowledged by JetStream (publishing again is safe)."""
    PUBLISHED = "published"
    """Signed and stored by JetStream: the controller will see it."""
    DENIED = "denied"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    """Withdrawn while pending, by its requester or an admin."""


class OpDecision(StrictModel):
    """The keeper's answer to a request, an approval or a rejection."""

    op_id: str
    status: OpStatus
    decision: Decision
    rule: str
    approvers: list[str] = Field(default_factory=list)
    approvals_needed: int = 0
    approver_roles: list[str] = Field(default_factory=list)
    expires_at: str | None = None
    token: str | None = None
    reason: str = ""


class OpInfo(OpDecision):
    """A decision with what it was about: `ops.list` and `ops.get` show this."""

    op_type: str
    requester: str
    target: OpTarget
    created_at: str
    trace_id: str = ""
    changes: list[dict[str, Any]] = Field(default_factory=list)
    """The plan's summary: what it would create, change or destroy (not its workflow, whose
    task params only the workflow's readers see)."""
