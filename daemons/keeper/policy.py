"""Op policies: glob rules on op type, image and target; first match wins, default deny.

Rules come from Nickel (`config/keeper_policy.ncl`, checked by the contract in
`config/schemas/keeper_policy.ncl`) and are checked again here as strict models, so a
policy from anywhere else (a test, a remote config) obeys the same shape.
"""

from __future__ import annotations

import json
import re
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError

from daemons.ops.model import Decision, OpRequest
from registry.errors import InvalidInput
from registry.model import StrictModel

DEFAULT_DENY = "default-deny"
SECOND_USER = "second-user"
"""Suffix of a rule's name when the requester's role made its op wait for an approver."""
RiskName = Literal["read", "write", "destructive"]
ALL_RISKS: list[RiskName] = ["read", "write", "destructive"]
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class PolicyDef(StrictModel):
    """One rule. Every pattern list means "anything" when it is `["*"]` (the default)."""

    name: str = Field(min_length=1, max_length=64)
    ops: list[str] = Field(default_factory=lambda: ["*"])
    images: list[str] = Field(default_factory=lambda: ["*"])
    targets: list[str] = Field(default_factory=lambda: ["*"])
    providers: list[str] = Field(default_factory=lambda: ["*"])
    labels: dict[str, str] = Field(default_factory=dict)
    unlabelled: bool | None = None
    risks: list[RiskName] = Field(default_factory=lambda: list(ALL_RISKS))
    decision: Decision
    approver_roles: list[str] = Field(default_factory=lambda: ["approver", "admin"])
    approvals: int = Field(default=1, ge=1, le=10)

    def matches(self, op: OpRequest) -> bool:
        target = op.target
        return (
            _any(op.type, self.ops)
            and _images(op.images, self.images)
            and _any(target.name, self.targets)
            and _any(target.provider, self.providers)
            and all(
                key in target.labels and fnmatchcase(target.labels[key], pattern)
                for key, pattern in self.labels.items()
            )
            and (self.unlabelled is None or self.unlabelled == (not target.labels))
            and op.risk in self.risks
        )


class Policy(StrictModel):
    approval_ttl_s: float = Field(default=3600, gt=0, le=30 * 86400)
    rules: list[PolicyDef] = Field(default_factory=list)

    def decide(self, op: OpRequest) -> PolicyDef:
        """The first rule matching `op`, or the default deny rule. An op whose requester
        may only ask for it (`second_user`) is never auto-approved: it needs one approver."""
        for rule in self.rules:
            if rule.matches(op):
                return _held(rule) if op.second_user else rule
        return PolicyDef(name=DEFAULT_DENY, decision=Decision.DENY)


def _held(rule: PolicyDef) -> PolicyDef:
    if rule.decision is not Decision.AUTO_APPROVE:
        return rule  # denied, or waiting for approvers already (never the requester)
    return PolicyDef(
        name=f"{rule.name}+{SECOND_USER}"[:64], decision=Decision.REQUIRE_APPROVAL, approvals=1
    )


def _any(value: str, patterns: list[str]) -> bool:
    return any(fnmatchcase(value, pattern) for pattern in patterns)


def _images(images: list[str], patterns: list[str]) -> bool:
    """`["*"]` matches anything (no image too); otherwise every image must match a pattern,
    so an op cannot slip an unlisted action in next to a listed one."""
    if patterns == ["*"]:
        return True
    return bool(images) and all(_any(image, patterns) for image in images)


def load_policy(path: Path) -> Policy:
    """Evaluate a policy file through Nickel (its contract checks it) and check the result."""
    import nickel

    try:
        exported = json.loads(nickel.run(f'import "{path.name}"', [str(path.parent)]))
    except nickel.NickelException as exc:
        text = _ANSI.sub("", str(exc)).strip()
        headline = text.splitlines()[0] if text else "evaluation failed"
        raise InvalidInput(
            f"keeper policy {path}: {headline.removeprefix('error: ')}; fix the file "
            "(its contract is config/schemas/keeper_policy.ncl)",
            details={"path": str(path), "nickel_error": text},
        ) from None
    try:
        return Policy.model_validate(exported)
    except ValidationError as exc:
        raise InvalidInput(
            f"keeper policy {path} does not have the policy shape: {exc.errors()[0]['msg']}",
            details={"path": str(path)},
        ) from None
