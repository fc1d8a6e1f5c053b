"""`GET /metrics`: operation `metrics.read` served as Prometheus text.

The route is a tier like any other: the call goes through the registry pipeline
(identify → authorize → rate limit → handler → audit), and only the wire differs: the
exposition is the body (Prometheus text, `text/plain`), not a JSON envelope. An error is
the usual envelope, with its status.
"""

from __future__ import annotations

from starlette.responses import Response

from daemons.common.exposition import CONTENT_TYPE
from registry import Principal, Registry
from registry.context import CallTier

METRICS_TOOL = "metrics.read"


class Metrics:
    """The scrape endpoint for one registry."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    async def scrape(self, principal: Principal, trace_id: str) -> Response:
        """The exposition, or the call's `PlatformError` (the endpoint answers it)."""
        env = await self._registry.invoke(
            METRICS_TOOL, {}, principal=principal, trace_id=trace_id, tier=CallTier.HTTP
        )
        data = env.raise_for_error()
        return Response(data["exposition"], media_type=CONTENT_TYPE)
