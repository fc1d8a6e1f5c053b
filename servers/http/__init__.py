"""The HTTP tier: `/v1/tools`, REST aliases, SSE streams, `/openapi.json`, `/metrics`, `/mcp`."""

from servers.http.app import begin_shutdown, create_app

__all__ = ["begin_shutdown", "create_app"]
