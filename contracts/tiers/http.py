"""Tier B: the HTTP daemon on a real socket (127.0.0.1:0), one keep-alive client.

Besides the envelope, the HTTP status must be the error table's status for the code.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

import httpx

from contracts.tiers.base import Listing, Outcome, Tier, envelope_problems, parse_json
from registry.errors import http_status


class HttpTier(Tier):
    key = "B"
    name = "http"

    async def _start(self, stack: AsyncExitStack) -> None:
        from servers.supervisor import serve

        registry = await self.env.open_registry(stack)
        base_url = await stack.enter_async_context(serve(registry, self.env.settings))
        self._client = await stack.enter_async_context(
            httpx.AsyncClient(
                base_url=base_url,
                headers={"Authorization": f"Bearer {self.env.caller_key()}"},
                timeout=self.env.call_timeout,
            )
        )

    async def call(self, tool: str, args: dict[str, Any]) -> Outcome:
        response = await self._client.post(f"/v1/tools/{tool}", json=args)
        body, problems = parse_json(response.content, f"HTTP {response.status_code} body")
        outcome = Outcome.from_envelope(body, problems)
        if outcome.answered:
            expected = 200 if outcome.ok else http_status(outcome.code or "internal")
            if response.status_code != expected:
                outcome.problems.append(
                    f"HTTP status {response.status_code} for {outcome.summary()}; "
                    f"the error table says {expected}"
                )
        return outcome

    async def listing(self) -> Listing:
        response = await self._client.get("/v1/tools")
        body, problems = parse_json(response.content, f"GET /v1/tools {response.status_code}")
        if response.status_code != 200:
            problems.append(f"GET /v1/tools answered HTTP {response.status_code}")
        if isinstance(body, dict) and "ok" in body:
            problems.extend(envelope_problems(body))
            body = body.get("data")
        return Listing("GET /v1/tools", data=body, problems=problems)
