"""Server providers: the `Provider` seam, the built-in `local` provider, lookup by name."""

from daemons.orchestrator.providers.base import (
    ENTRY_POINT_GROUP,
    SERVER_NAME_PATTERN,
    Provider,
    ProviderFactory,
    check_server_name,
    get_provider,
    provider_names,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "SERVER_NAME_PATTERN",
    "Provider",
    "ProviderFactory",
    "check_server_name",
    "get_provider",
    "provider_names",
]
