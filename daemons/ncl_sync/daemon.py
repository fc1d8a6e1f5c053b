"""The ncl-sync daemon: keeps the cache warm for a workspace as its `.ncl` files change.

It warms every file on start, then waits on `watchfiles` events. Any change re-reads every
workspace file through the cache: an unchanged graph is a hit (hashing only), an edited
file or an edited import is a fresh export. A process that changed config and wants it
exported now writes `.sync-<pid>.json` in the workspace; the daemon re-exports and removes
it. With an idle timeout the daemon stops after that long without an event.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import re
import sys
from pathlib import Path

import watchfiles

from daemons.common.settings import Settings
from daemons.common.signals import stop_requested
from daemons.ncl_sync.cache import ConfigCache
from daemons.ncl_sync.config import NclSyncConfig
from registry.errors import PlatformError

log = logging.getLogger("prvng.ncl_sync")
SIDECAR = re.compile(r"^\.sync-\d+\.json$")
STATS_FILE = "daemon-stats.json"


def workspace_files(workspace: Path) -> list[Path]:
    """Every `.ncl` file of the workspace (hidden directories skipped), resolved."""
    return sorted(
        p.resolve()
        for p in workspace.rglob("*.ncl")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(workspace).parts)
    )


def _relevant(_change: watchfiles.Change, path: str) -> bool:
    name = Path(path).name
    return name.endswith(".ncl") or bool(SIDECAR.match(name))


class NclSyncDaemon:
    """Watches one workspace and keeps `cache` filled for it."""

    def __init__(self, cache: ConfigCache, workspace: Path, config: NclSyncConfig) -> None:
        self.cache = cache
        self.workspace = workspace.resolve()
        self.config = config
        self.rounds = 0
        """Completed sync rounds (the first warm-up is round 1); tests wait on it."""
        self.ready = asyncio.Event()
        self._errors: dict[Path, str] = {}

    async def sync(self) -> dict[Path, str]:
        """Re-read every workspace file through the cache; the errors by file."""
        errors = await self.cache.warm(self.workspace, workspace_files(self.workspace))
        self._tell(errors)
        self.rounds += 1
        self._write_stats()
        return errors

    def _tell(self, errors: dict[Path, str]) -> None:
        """Say what changed, not every error of every round: at warm-up, which files do not
        export on their own (schemas, broken examples); later, each new error and each fix."""
        if self.rounds == 0:
            if errors:
                names = ", ".join(sorted(os.path.relpath(p, self.workspace) for p in errors))
                log.info("ncl-sync: %d file(s) do not export on their own: %s", len(errors), names)
        else:
            for target, error in errors.items():
                if self._errors.get(target) != error:
                    log.warning("ncl-sync: %s: %s", target, error)
            for target in self._errors.keys() - errors.keys():
                log.info("ncl-sync: %s exports again", target)
        self._errors = errors

    def _write_stats(self) -> None:
        summary = self.cache.summary() | {"workspace": str(self.workspace), "rounds": self.rounds}
        self.cache.put_file(STATS_FILE, json.dumps(summary, indent=2) + "\n")

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Warm up, then follow changes until `stop` is set or the idle timeout passes."""
        stop = stop or asyncio.Event()
        idle_ms = self.config.idle_timeout_secs * 1000 or None
        watcher = watchfiles.awatch(
            self.workspace,
            watch_filter=_relevant,
            debounce=self.config.sync_poll_interval_ms,
            stop_event=stop,
            rust_timeout=idle_ms,
            yield_on_timeout=idle_ms is not None,
            poll_delay_ms=self.config.sync_poll_interval_ms,
        )
        await self.sync()
        self.ready.set()
        async for changes in watcher:
            if not changes:
                log.info("ncl-sync: idle for %ss, stopping", self.config.idle_timeout_secs)
                return
            self._forget_deleted(changes)
            await self.sync()
            _remove_sidecars(changes)

    def _forget_deleted(self, changes: set[tuple[watchfiles.Change, str]]) -> None:
        for change, path in changes:
            if change == watchfiles.Change.deleted and path.endswith(".ncl"):
                self.cache.last_good.pop(Path(path).resolve(), None)


def _remove_sidecars(changes: set[tuple[watchfiles.Change, str]]) -> None:
    """Requests answered: the sync that just ran covered what they asked for."""
    for _change, path in changes:
        if SIDECAR.match(Path(path).name):
            Path(path).unlink(missing_ok=True)


@functools.cache
def shared_cache(settings: Settings) -> ConfigCache:
    """This process's cache for `settings` (as its `ncl-sync.ncl` sets it up), for readers
    handed settings rather than a cache: the orchestrator's taskserv actions."""
    return open_cache(settings, NclSyncConfig.load(settings.config_dir))


def open_cache(settings: Settings, config: NclSyncConfig) -> ConfigCache:
    """The cache the platform's config reads use, as `config` (ncl-sync.ncl) sets it up."""
    return ConfigCache(
        settings.config_cache_dir,
        extra_import_paths=config.extra_import_paths,
        warm_concurrency=config.warm_concurrency,
    )


async def _serve(settings: Settings, workspace: Path) -> None:
    config = NclSyncConfig.load(workspace)
    daemon = NclSyncDaemon(open_cache(settings, config), workspace, config)
    with stop_requested() as stop:
        run = asyncio.create_task(daemon.run(stop))
        ready = asyncio.create_task(daemon.ready.wait())
        await asyncio.wait({run, ready}, return_when=asyncio.FIRST_COMPLETED)
        if daemon.ready.is_set():
            files = len(workspace_files(daemon.workspace))
            print(f"ncl-sync ready on {daemon.workspace} ({files} files, pid {os.getpid()})")
            sys.stdout.flush()
        ready.cancel()
        await run


def run_daemon(settings: Settings, workspace: Path | None = None) -> int:
    """`prvng ncl-sync daemon` / `prvng daemon ncl-sync`: until SIGTERM/SIGINT or idle."""
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    workspace = workspace or settings.config_dir
    if not workspace.is_dir():
        print(f"ncl-sync: no workspace directory {workspace}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve(settings, workspace))
    except PlatformError as err:
        print(f"ncl-sync: {err.message}", file=sys.stderr)
        return 1
    return 0
