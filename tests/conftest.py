"""Shared fixtures: an isolated PRVNG_HOME per test, a registry on an in-memory store, and a
real nats-server per module with clean ops streams per test."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from fastmcp import Client as McpClient
from fastmcp.client.transports import StreamableHttpTransport
from nats.aio.client import Client
from nats.js.errors import NotFoundError

from daemons.bus import AUDIT_STREAM, PENDING_STREAM, NatsServer, connect, ensure_streams
from daemons.common.keystore import KeyStore
from daemons.common.settings import Settings
from registry import Principal, Registry
from servers.assembly import build_registry
from servers.supervisor import serve
from tests.subprocesses import mcp_stdio


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`slow` tests run only with PRVNG_SLOW=1 (or when selected with `-m slow`)."""
    if os.environ.get("PRVNG_SLOW") == "1" or "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="slow: set PRVNG_SLOW=1 to run")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def clean_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own PRVNG_HOME, XDG dirs and an in-memory state store.

    Every `PRVNG_*` variable is dropped (not a fixed list), so no setting from a
    developer's shell, present or future, changes a result."""
    for var in [name for name in os.environ if name.startswith("PRVNG_")]:
        monkeypatch.delenv(var)
    home = tmp_path / "home"
    monkeypatch.setenv("PRVNG_HOME", str(home))
    for var, folder in (("XDG_CACHE_HOME", "cache"), ("XDG_DATA_HOME", "data")):
        monkeypatch.setenv(var, str(tmp_path / folder))
    monkeypatch.setenv("PRVNG_SURREAL_URL", "mem://")
    # No test meets a limit unless it sets one (the defaults would stop a fast suite).
    monkeypatch.setenv("PRVNG_RATE_LIMITS", "off")
    yield home


@pytest.fixture
def settings(clean_environ: Path) -> Settings:
    return Settings.from_env()


@pytest.fixture
def keystore(settings: Settings) -> KeyStore:
    return KeyStore(settings)


@pytest.fixture
def owner(keystore: KeyStore) -> Principal:
    return keystore.owner()


@pytest.fixture
def admin_key(settings: Settings, owner: Principal) -> str:
    return settings.admin_key_file.read_text().strip()


@pytest.fixture
async def registry(settings: Settings, keystore: KeyStore) -> AsyncIterator[Registry]:
    reg = build_registry(settings, keystore=keystore)
    try:
        yield reg
    finally:
        await reg.aclose()


def environ_snapshot() -> dict[str, str]:
    """The current environment, for subprocesses that must see the test's PRVNG_HOME."""
    return dict(os.environ)


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """One real nats-server (JetStream, free port) per test module, stopped in finally."""
    server = NatsServer(tmp_path_factory.mktemp("nats"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def nc(nats_server: NatsServer) -> AsyncIterator[Client]:
    """A client of `nats_server` with the ops streams emptied (deleted and created again)."""
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


McpConnect = Callable[..., McpClient]


@pytest.fixture(params=["stdio", "http"])
async def mcp_connect(
    request: pytest.FixtureRequest, registry: Registry, settings: Settings, admin_key: str
) -> AsyncIterator[McpConnect]:
    """An MCP client factory for the admin, on both transports: a `prvng mcp` process, or
    `/mcp` of a daemon (`key=` another principal's key there)."""
    if request.param == "stdio":
        yield lambda **kw: McpClient(mcp_stdio(), **kw)
        return
    async with serve(registry, settings) as url:
        yield lambda key=admin_key, **kw: McpClient(
            StreamableHttpTransport(f"{url}/mcp/", auth=key), **kw
        )
