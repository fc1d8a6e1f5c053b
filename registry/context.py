"""What a handler sees of its call: who, which trace, shared resources, progress."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from registry.principal import Principal
from registry.resources import Resources

if TYPE_CHECKING:
    from registry.registry import Registry

T = TypeVar("T")

ProgressSink = Callable[[float, float | None, str | None], Awaitable[None]]


@dataclass(slots=True)
class ToolContext:
    """Handed to every handler with its validated input."""

    principal: Principal
    trace_id: str
    registry: Registry
    progress_sink: ProgressSink | None = None

    @property
    def resources(self) -> Resources:
        return self.registry.resources

    async def resource(self, key: type[T]) -> T:
        return await self.registry.resources.get(key)

    async def progress(
        self, progress: float, total: float | None = None, message: str | None = None
    ) -> None:
        """Report progress to the caller when its tier can show it (MCP, SSE)."""
        if self.progress_sink is not None:
            await self.progress_sink(progress, total, message)
