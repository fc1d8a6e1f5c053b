"""`prvng ncl-sync …` and `prvng daemon ncl-sync` as users run them: real subprocesses."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from daemons.common.settings import Settings
from daemons.ncl_sync import ConfigCache
from tests.subprocesses import read_ready_line, reap
from tests.waiting import until_blocking

PRVNG = str(Path(sys.executable).with_name("prvng"))


def prvng(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PRVNG, *args], capture_output=True, text=True, timeout=60, check=False)


def _workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "lib.ncl").write_text("{ port = 8080 }\n")
    (ws / "main.ncl").write_text('{ port = (import "lib.ncl").port }\n')
    return ws


def test_warm_key_stats_invalidate(tmp_path: Path, settings: Settings) -> None:
    ws = _workspace(tmp_path)
    warm = prvng("ncl-sync", "warm", str(ws))
    assert warm.returncode == 0, warm.stderr
    assert json.loads(warm.stdout) | {"errors": {}} == {
        "files": 2,
        "exported": 2,
        "cached": 0,
        "errors": {},
    }
    key = prvng("ncl-sync", "key", str(ws / "main.ncl"))
    cache = ConfigCache(settings.config_cache_dir)
    assert key.stdout.strip() == cache.key_for(ws, ws / "main.ncl")
    assert json.loads(prvng("ncl-sync", "stats").stdout)["entries"] == 2
    dropped = prvng("ncl-sync", "invalidate", str(ws / "main.ncl"))
    assert json.loads(dropped.stdout)["removed"] is True
    assert json.loads(prvng("ncl-sync", "stats").stdout)["entries"] == 1


def test_key_refuses_an_import_from_outside_unless_given_as_import_path(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    outside = tmp_path / "shared"
    outside.mkdir()
    (outside / "base.ncl").write_text("{ a = 1 }\n")
    (ws / "uses.ncl").write_text(f'import "{outside / "base.ncl"}"\n')
    refused = prvng("ncl-sync", "key", str(ws / "uses.ncl"))
    assert refused.returncode == 4 and "forbidden" in refused.stderr
    assert str(outside / "base.ncl") in refused.stderr
    allowed = prvng("ncl-sync", "key", str(ws / "uses.ncl"), "--import-path", str(outside))
    assert allowed.returncode == 0 and len(allowed.stdout.strip()) == 64


def test_daemon_alone_follows_an_edit_and_stops_on_sigterm(
    tmp_path: Path, settings: Settings
) -> None:
    ws = _workspace(tmp_path)
    (ws / "ncl-sync.ncl").write_text("{ sync_poll_interval_ms = 50 }\n")
    proc = subprocess.Popen(
        [PRVNG, "ncl-sync", "daemon", "--workspace", str(ws)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert "ncl-sync ready on" in read_ready_line(proc)
        (ws / "lib.ncl").write_text("{ port = 1 }\n")
        cache = ConfigCache(settings.config_cache_dir)
        entry = cache.entry_path(cache.key_for(ws, ws / "main.ncl"))
        until_blocking(entry.is_file, what="the daemon re-exporting main.ncl")
        assert json.loads(entry.read_text()) == {"port": 1}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        reap(proc)


def test_daemon_ncl_sync_is_a_known_daemon() -> None:
    done = prvng("daemon", "--help")
    assert "ncl-sync" in done.stdout
