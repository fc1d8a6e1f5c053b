"""What a handler sees of its call: who, which trace, which tier, shared resources, the
listing, progress.

Handlers get what they use, not the registry: they cannot invoke other tools around the
pipeline or write to the audit sink.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from registry.listing import ToolListing
from registry.principal import Principal
from registry.resources import Resources

T = TypeVar("T")

ProgressSink = Callable[[float, float | None, str | None], Awaitable[None]]


class CallTier(StrEnum):
    """The way a call came in, as its tier says (audited with the call).

    A remote CLI and a stdio MCP relayed to `/mcp` name themselves with the
    `X-Prvng-Tier` header; that is a label for the audit, never a grant."""

    HTTP = "http"
    MCP_HTTP = "mcp-http"
    MCP_STDIO = "mcp-stdio"
    CLI_LOCAL = "cli-local"
    CLI_REMOTE = "cli-remote"


TIER_HEADER = "X-Prvng-Tier"


@dataclass(slots=True)
class ToolContext:
    """Handed to every handler with its validated input."""

    principal: Principal
    trace_id: str
    resources: Resources
    listing: Callable[[], ToolListing]
    """Every operation of this registry (`tools.list`, `platform.info`)."""
    progress_sink: ProgressSink | None = None
    tier: CallTier | None = None
    """None when no tier set it (a direct `Registry.invoke`, as tests and benches do)."""

    async def resource(self, key: type[T]) -> T:
        return await self.resources.get(key)

    async def progress(
        self, progress: float, total: float | None = None, message: str | None = None
    ) -> None:
        """Report progress to the caller when its tier can show it (MCP, SSE)."""
        if self.progress_sink is not None:
            await self.progress_sink(progress, total, message)
