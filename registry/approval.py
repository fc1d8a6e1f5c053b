"""The approval step: tools that need approval do not run without it.

A gate decides whether a gated call may run now. The default gate approves nothing: a
call to such a tool answers `approval_required` and nothing runs.
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


class NoApprovals:
    """Refuses every approval-gated call: nothing on this platform can approve one yet."""

    async def check(self, spec: ToolSpec, principal: Principal, args: dict[str, object]) -> None:
        if spec.requires_approval:
            raise ApprovalRequired(
                f"{spec.name} needs an approval, and this platform has no approver for it; "
                "nothing ran",
                details={"tool": spec.name},
            )
