"""An authorizer that allows every call: a bench that measures one pipeline step (the
audit, the rate limiter) keeps the policy engine's cost out of its numbers."""

from __future__ import annotations

from typing import Any

from registry import Principal, ToolSpec
from registry.resources import Resources


class AllowAll:
    def may_call(self, principal: Principal, spec: ToolSpec) -> bool:
        return True

    async def authorize(
        self, principal: Principal, spec: ToolSpec, args: Any, resources: Resources
    ) -> None:
        return None
