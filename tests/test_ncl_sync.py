"""ncl-sync: the config cache (keys over the import graph, atomic entries, confinement), its
daemon on real watchfiles events, and `config.export` reading through it."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from daemons.common.settings import Settings
from daemons.ncl_sync import ConfigCache, NclSyncConfig, NclSyncDaemon, import_literals
from registry import Principal, Registry
from registry.errors import Forbidden, InvalidInput
from tests.waiting import until

DEADLINE_S = 20.0


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "lib.ncl").write_text("{ port = 8080 }\n")
    (root / "main.ncl").write_text('let lib = import "lib.ncl" in { port = lib.port }\n')
    return root


@pytest.fixture
def cache(tmp_path: Path) -> ConfigCache:
    return ConfigCache(tmp_path / "cache", warm_concurrency=2)


def test_import_scanner_skips_comments_and_strings_but_reads_interpolations() -> None:
    src = (
        '# import "commented.ncl"\n'
        'let a = import "a.ncl" in\n'
        'let s = "not import \\"x.ncl\\"" in\n'
        'let m = m%"import "y.ncl" %{ (import "b.ncl").v }"% in\n'
        '{ c = import m%"c.ncl"% }\n'
    )
    assert sorted(import_literals(src)) == ["a.ncl", "b.ncl", "c.ncl"]


def test_hit_after_miss(cache: ConfigCache, ws: Path) -> None:
    assert cache.read(ws, ws / "main.ncl") == {"port": 8080}
    assert cache.read(ws, ws / "main.ncl") == {"port": 8080}
    assert (cache.stats.misses, cache.stats.hits) == (1, 1)
    assert cache.entry_path(cache.key_for(ws, ws / "main.ncl")).is_file()


def test_editing_an_imported_file_changes_the_importers_value(cache: ConfigCache, ws: Path) -> None:
    before = cache.key_for(ws, ws / "main.ncl")
    assert cache.read(ws, ws / "main.ncl") == {"port": 8080}
    (ws / "lib.ncl").write_text("{ port = 9090 }\n")
    assert cache.key_for(ws, ws / "main.ncl") != before
    assert cache.read(ws, ws / "main.ncl") == {"port": 9090}


def test_same_mtime_and_size_never_serves_the_old_value(cache: ConfigCache, ws: Path) -> None:
    lib = ws / "lib.ncl"
    assert cache.read(ws, ws / "main.ncl") == {"port": 8080}
    stat = lib.stat()
    lib.write_text("{ port = 8081 }\n")  # same size
    os.utime(lib, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert cache.read(ws, ws / "main.ncl") == {"port": 8081}


def test_key_covers_format_and_sorted_imports(cache: ConfigCache, ws: Path) -> None:
    (ws / "other.ncl").write_text("{ port = 8080 }\n")
    (ws / "two.ncl").write_text('(import "lib.ncl") & { x = (import "other.ncl").port }\n')
    (ws / "swapped.ncl").write_text('(import "lib.ncl") & { x = (import "other.ncl").port }\n')
    assert cache.key_for(ws, ws / "two.ncl") == cache.key_for(ws, ws / "swapped.ncl")
    (ws / "other.ncl").write_text("{ port = 1 }\n")
    assert cache.key_for(ws, ws / "two.ncl") != cache.key_for(ws, ws / "main.ncl")


def test_invalid_nickel_keeps_the_last_good_entry_flagged_stale(
    cache: ConfigCache, ws: Path
) -> None:
    target = ws / "main.ncl"
    assert cache.read(ws, target) == {"port": 8080}
    target.write_text("{\n  port = ,\n}\n")
    with pytest.raises(InvalidInput) as caught:
        cache.read(ws, target)
    assert (caught.value.details["file"], caught.value.details["line"]) == ("main.ncl", 2)
    assert cache.last_good_value(target) == ({"port": 8080}, True)
    assert cache.summary()["stale"] == [str(target)]


def test_concurrent_readers_never_see_half_an_entry(cache: ConfigCache) -> None:
    key = "ab" + "0" * 62
    big = [json.dumps({"v": [n] * 200_000}) for n in (1, 2)]
    cache.put(key, big[0])
    stop = threading.Event()
    seen: list[int] = []
    failures: list[Exception] = []

    def reader() -> None:
        while not stop.is_set():
            try:
                seen.append(json.loads(cache.entry_path(key).read_text())["v"][0])
            except Exception as exc:  # a torn read is exactly what we look for
                failures.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for thread in threads:
        thread.start()
    for n in range(40):
        cache.put(key, big[n % 2])
    stop.set()
    for thread in threads:
        thread.join()
    assert not failures and set(seen) <= {1, 2} and seen
    assert not list(cache.entry_path(key).parent.glob("*.tmp"))


async def test_warm_runs_at_most_warm_concurrency_exports(cache: ConfigCache, ws: Path) -> None:
    body = "{ " + ", ".join(f"f{i} = std.string.from_number ({i} * 3)" for i in range(3000)) + " }"
    files = []
    for i in range(6):
        (ws / f"big{i}.ncl").write_text(body.replace("f0 ", f"g{i} "))
        files.append(ws / f"big{i}.ncl")
    assert await cache.warm(ws, files) == {}
    assert cache.stats.misses == 6 and 1 <= cache.peak_in_flight <= cache.warm_concurrency


def _outside(tmp_path: Path) -> Path:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "evil.ncl").write_text('{ secret = "outside" }\n')
    return elsewhere / "evil.ncl"


@pytest.mark.parametrize("how", ["absolute", "dotdot", "symlink", "nested"])
async def test_imports_outside_the_workspace_are_forbidden(
    registry: Registry, owner: Principal, settings: Settings, tmp_path: Path, ws: Path, how: str
) -> None:
    evil = _outside(tmp_path)
    spec = {"absolute": str(evil), "dotdot": "../elsewhere/evil.ncl"}.get(how, "link.ncl")
    if how in ("symlink", "nested"):
        (ws / "link.ncl").symlink_to(evil)
    if how == "nested":
        (ws / "inner.ncl").write_text('import "link.ncl"\n')
        spec = "inner.ncl"
    (ws / "attack.ncl").write_text(f'import "{spec}"\n')
    registry.resources.put(Settings, replace(settings, config_dir=ws))
    env = await registry.invoke("config.export", {"path": "attack.ncl"}, principal=owner)
    assert env.code == "forbidden", env.data
    assert "outside" not in json.dumps(env.data)
    assert ("link.ncl" if how in ("symlink", "nested") else spec) in env.error["message"]  # type: ignore[index]


def test_extra_import_paths_are_allowed(tmp_path: Path, ws: Path) -> None:
    evil = _outside(tmp_path)
    (ws / "attack.ncl").write_text(f'import "{evil}"\n')
    with pytest.raises(Forbidden):
        ConfigCache(tmp_path / "c1").read(ws, ws / "attack.ncl")
    allowed = ConfigCache(tmp_path / "c2", extra_import_paths=(evil.parent,))
    assert allowed.read(ws, ws / "attack.ncl") == {"secret": "outside"}


async def test_config_export_reads_through_the_cache(
    registry: Registry, owner: Principal, settings: Settings
) -> None:
    for _ in range(2):
        env = await registry.invoke("config.export", {"path": "workspace.ncl"}, principal=owner)
        assert env.ok
    cache = await registry.resources.get(ConfigCache)
    assert (cache.stats.misses, cache.stats.hits) == (1, 1)
    assert cache.directory == settings.config_cache_dir


async def test_daemon_follows_edits_imports_and_sidecars(cache: ConfigCache, ws: Path) -> None:
    config = NclSyncConfig(sync_poll_interval_ms=50)
    daemon = NclSyncDaemon(cache, ws, config)
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop))
    try:
        await asyncio.wait_for(daemon.ready.wait(), DEADLINE_S)
        (ws / "main.ncl").write_text('let lib = import "lib.ncl" in { port = lib.port + 1 }\n')
        key = cache.key_for(ws, ws / "main.ncl")
        await until(lambda: cache.entry_path(key).is_file(), what="the edited file's entry")
        assert json.loads(cache.entry_path(key).read_text()) == {"port": 8081}
        (ws / "lib.ncl").write_text("{ port = 1 }\n")
        key = cache.key_for(ws, ws / "main.ncl")
        await until(lambda: cache.entry_path(key).is_file(), what="the importer's new entry")
        sidecar = ws / f".sync-{os.getpid()}.json"
        sidecar.write_text("{}")
        await until(lambda: not sidecar.exists(), what="the sidecar's removal")
    finally:
        stop.set()
        await asyncio.wait_for(task, DEADLINE_S)


async def test_daemon_stops_when_idle(cache: ConfigCache, ws: Path) -> None:
    daemon = NclSyncDaemon(cache, ws, NclSyncConfig(idle_timeout_secs=1))
    await asyncio.wait_for(daemon.run(), DEADLINE_S)
    assert daemon.rounds == 1
