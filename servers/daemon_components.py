"""The background daemons `prvng platform start` runs in its process: ncl-sync and the
audit mirror, as supervisor components with a line each on the `HealthBoard`.

ncl-sync keeps the registry's own `ConfigCache` warm, so every config read of the running
platform sees an edited `.ncl` file re-exported. The audit mirror needs NATS: given no URL
(`PRVNG_NATS_URL`) it starts nothing and says so on the board, without holding up `/health`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path

from nats.aio.client import Client

from daemons.audit_mirror import AuditMirror
from daemons.audit_mirror.daemon import mirror_config
from daemons.bus import connect, ensure_streams
from daemons.common.health import ComponentStatus
from daemons.common.settings import Settings
from daemons.ncl_sync import ConfigCache, NclSyncConfig, NclSyncDaemon, workspace_files
from registry import Registry
from registry.errors import Unavailable


class NclSyncComponent:
    """Watches the workspace config dir and re-exports what changes into the shared cache."""

    name = "ncl-sync"

    def __init__(self, registry: Registry, workspace: Path) -> None:
        self.registry = registry
        self.workspace = workspace
        self.daemon: NclSyncDaemon | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if not self.workspace.is_dir():
            raise Unavailable(
                f"ncl-sync: no workspace directory {self.workspace}; set PRVNG_CONFIG to one"
            )
        cache = await self.registry.resources.get(ConfigCache)
        config = NclSyncConfig.load(self.workspace).model_copy(update={"idle_timeout_secs": 0})
        self.daemon = daemon = NclSyncDaemon(cache, self.workspace, config)
        self._stop.clear()
        self._task = asyncio.create_task(daemon.run(self._stop), name="ncl-sync")
        ready = asyncio.create_task(daemon.ready.wait())
        await asyncio.wait({self._task, ready}, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        if self._task.done():
            self._task.result()  # the warm-up's exception, if any
            raise Unavailable("ncl-sync stopped before its first sync")

    async def status(self) -> ComponentStatus:
        daemon, task = self.daemon, self._task
        if daemon is None or task is None or task.done():
            return ComponentStatus(False, "stopped")
        files = len(workspace_files(daemon.workspace))
        return ComponentStatus(
            True, f"watching {files} files, {daemon.cache.summary()['entries']} cached"
        )

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
            self._task = None


class AuditMirrorComponent:
    """Commits every `ops.audit.>` event to the signed git repository, once NATS is given:
    a URL, or how to learn it when the platform starts (its bundled nats-server's)."""

    name = "audit-mirror"

    def __init__(
        self, settings: Settings, nats_url: str | Callable[[], Awaitable[str]] | None
    ) -> None:
        self.settings = settings
        self._nats_url = nats_url
        self.nats_url = nats_url if isinstance(nats_url, str) else None
        self.mirror: AuditMirror | None = None
        self._nc: Client | None = None

    async def start(self) -> None:
        if callable(self._nats_url):
            self.nats_url = await self._nats_url()
        if not self.nats_url:
            return
        self._nc = await connect(self.nats_url, name="audit-mirror")
        try:
            await ensure_streams(self._nc.jetstream())
            self.mirror = AuditMirror(nc=self._nc, config=mirror_config(self.settings))
            await self.mirror.start()
        except BaseException:
            await self.stop()
            raise

    async def status(self) -> ComponentStatus:
        if not self.nats_url:
            return ComponentStatus(True, "waiting for NATS")
        if self.mirror is None:
            return ComponentStatus(False, "stopped")
        counts = self.mirror.counts
        return ComponentStatus(True, f"{counts.committed} committed, {counts.failed} failed")

    async def stop(self) -> None:
        mirror, nc = self.mirror, self._nc
        self.mirror, self._nc = None, None
        if mirror is not None:
            await mirror.stop()
        if nc is not None:
            await nc.close()


def daemon_components(
    settings: Settings, registry: Registry, nats_url: str | Callable[[], Awaitable[str]] | None
) -> list[NclSyncComponent | AuditMirrorComponent]:
    """ncl-sync on the workspace config dir and the audit mirror on `nats_url`."""
    return [
        NclSyncComponent(registry, settings.config_dir),
        AuditMirrorComponent(settings, nats_url),
    ]
