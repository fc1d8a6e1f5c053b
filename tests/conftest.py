"""Shared fixtures: an isolated PRVNG_HOME per test and a registry on an in-memory store."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from daemons.common.keystore import KeyStore
from daemons.common.settings import Settings
from registry import Principal, Registry
from servers.assembly import build_registry


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
