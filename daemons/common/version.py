"""The platform's version, as installed (MCP `serverInfo`, OpenAPI, `platform.info`)."""

from __future__ import annotations

from functools import cache
from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "provisioning-platform"


@cache
def platform_version() -> str:
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "0+unknown"
