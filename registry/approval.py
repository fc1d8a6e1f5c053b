"""The approval step: tools that need approval do not run without it.

The ops-keeper supplies the real gate (policy decision, signed approval); until one is
configured, a call to such a tool answers `approval_required` and nothing runs.
"""

from __future__ import annotations

from typing import Protocol

from registry.errors import ApprovalRequired
from registry.model import ToolSpec
from registry.principal import Principal


class ApprovalGate(Protocol):
    """Raises `ApprovalRequired` unless the call may run now."""

    async def check(
        self, spec: ToolSpec, principal: Principal, args: dict[str, object]
    ) -> None: ...


class RequireKeeper:
    """Refuses every approval-gated call: no keeper is configured to approve it."""

    async def check(self, spec: ToolSpec, principal: Principal, args: dict[str, object]) -> None:
        if spec.requires_approval:
            raise ApprovalRequired(
                f"{spec.name} needs an approval and no ops-keeper is configured; "
                "start the platform with the keeper (`prvng platform start`) and retry",
                details={"tool": spec.name},
            )
