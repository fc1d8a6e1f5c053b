"""Fixtures for the audit mirror: one real nats-server per module (free port), clean
streams per test, and mirrors on a temp repository, all stopped in finally."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from nats.aio.client import Client
from nats.js.errors import NotFoundError

from daemons.audit_mirror import AuditMirror, MirrorConfig
from daemons.bus import AUDIT_STREAM, PENDING_STREAM, NatsServer, connect, ensure_streams
from daemons.common.settings import Settings


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path_factory.mktemp("nats"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def nc(nats_server: NatsServer) -> AsyncIterator[Client]:
    client = await connect(nats_server.url, name="test")
    try:
        js = client.jetstream()
        for stream in (PENDING_STREAM, AUDIT_STREAM):
            with contextlib.suppress(NotFoundError):
                await js.delete_stream(stream)
        await ensure_streams(js)
        yield client
    finally:
        await client.close()


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


async def until(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    """Wait for `condition` with a deadline (no fixed sleeps)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        await asyncio.sleep(0.02)


def git_out(repo: Path, *args: str) -> str:
    from daemons.audit_mirror.repo import git

    return git(repo, *args)
