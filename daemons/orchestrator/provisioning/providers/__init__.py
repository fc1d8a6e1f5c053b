"""Server providers: the `Provider` seam (`provider`), the built-in `local` provider, lookup
by name (entry points add more, see docs/providers.md)."""

from daemons.orchestrator.provisioning.providers.provider import (
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
