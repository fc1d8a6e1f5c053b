"""Fixtures for the audit mirror: one real nats-server per module (free port), clean
streams per test, and mirrors on a temp repository, all stopped in finally."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from nats.aio.client import Client

from daemons.audit_mirror import AuditMirror, MirrorConfig
from daemons.common.settings import Settings


@pytest.fixture
def mirror_config(settings: Settings) -> MirrorConfig:
    return MirrorConfig(
        repo_dir=settings.audit_dir,
        keys_dir=settings.keys_dir,
        ack_wait_s=1.0,
        fetch_timeout_s=0.2,
        retry_delay_s=0.2,
        publish_backoff_s=(0.05, 0.5),
    )


StartMirror = Callable[..., Awaitable[AuditMirror]]


@pytest.fixture
async def start_mirror(nc: Client, mirror_config: MirrorConfig) -> AsyncIterator[StartMirror]:
    started: list[AuditMirror] = []

    async def start(config: MirrorConfig | None = None) -> AuditMirror:
        mirror = AuditMirror(nc=nc, config=config or mirror_config)
        started.append(mirror)
        await mirror.start()
        return mirror

    try:
        yield start
    finally:
        for mirror in started:
            await mirror.stop()


def git_out(repo: Path, *args: str) -> str:
    from daemons.audit_mirror.repo import git

    return git(repo, *args)
