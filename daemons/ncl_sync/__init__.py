"""ncl-sync: Nickel files exported to JSON through a content-addressed cache that cannot go stale.

`ConfigCache` is the library every config read of the platform uses (with or without the
daemon running); `NclSyncDaemon` keeps it warm as the workspace changes.
"""

from daemons.ncl_sync.cache import ConfigCache, cache_key
from daemons.ncl_sync.config import NclSyncConfig
from daemons.ncl_sync.daemon import (
    NclSyncDaemon,
    open_cache,
    run_daemon,
    shared_cache,
    workspace_files,
)
from daemons.ncl_sync.imports import import_graph, import_literals

__all__ = [
    "ConfigCache",
    "NclSyncConfig",
    "NclSyncDaemon",
    "cache_key",
    "import_graph",
    "import_literals",
    "open_cache",
    "run_daemon",
    "shared_cache",
    "workspace_files",
]
