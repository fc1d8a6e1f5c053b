"""Tier A: `Registry.invoke` in process, the reference every other tier is compared with."""

from __future__ import annotations

import json
from contextlib import AsyncExitStack
from typing import Any

from contracts.tiers.base import Listing, Outcome, Tier
from registry import Principal, Registry


class DirectTier(Tier):
    key = "A"
    name = "direct"

    async def _start(self, stack: AsyncExitStack) -> None:
        self._owner: Principal = self.env.caller()
        self._registry: Registry = await self.env.open_registry(stack)

    async def call(self, tool: str, args: dict[str, Any]) -> Outcome:
        envelope = await self._registry.invoke(tool, args, principal=self._owner)
        # Round-trip through JSON: what a wire would carry, and proof that it can.
        return Outcome.from_envelope(json.loads(json.dumps(envelope.to_dict())), [])

    async def listing(self) -> Listing:
        data = json.loads(self._registry.listing().model_dump_json())
        return Listing("Registry.listing()", data=data)
