"""`prvng` as users run it: real subprocesses of the console script, in-process and remote."""

from __future__ import annotations

import asyncio
import json
import os
import select
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from daemons.common.settings import Settings
from servers.assembly import build_registry

PRVNG = str(Path(sys.executable).with_name("prvng"))
HEAVY = ("pydantic", "fastmcp", "uvicorn", "surrealdb", "httpx", "nickel", "tools", "registry")


def prvng(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the console script with the test's environment (its PRVNG_HOME)."""
    return subprocess.run(
        [PRVNG, *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


def ok_json(*args: str) -> Any:
    done = prvng(*args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def warm_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One listing cache for the module, so each test does not rebuild it."""
    cache = tmp_path_factory.mktemp("cli-cache")
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "PRVNG_SURREAL_URL": "mem://"}
    env["PRVNG_HOME"] = str(tmp_path_factory.mktemp("warm-home"))
    subprocess.run([PRVNG, "tools", "list"], env=env, capture_output=True, check=True)
    return cache


@pytest.fixture(autouse=True)
def shared_cache(warm_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(warm_cache))


@pytest.fixture
def listing(settings: Settings) -> dict[str, Any]:
    """What `tools.list` answers, straight from the registry."""
    registry = build_registry(settings)
    try:
        return registry.listing().model_dump(mode="json")
    finally:
        asyncio.run(registry.aclose())


def modules_after(argv: list[str]) -> set[str]:
    """The top-level modules a fresh interpreter has loaded after `main(argv)`."""
    code = (
        "import json, sys\nfrom servers.cli import main\n"
        f"main({argv!r})\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})), file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


def test_tools_list_table_and_json(listing: dict[str, Any]) -> None:
    table = prvng("tools", "list")
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split() == ["NAME", "RISK", "SUMMARY"]
    assert any(row.split()[:2] == ["server.remove", "destructive"] for row in rows)
    assert ok_json("tools", "list", "--json") == listing
    assert ok_json("tools", "list", "--output", "json") == listing
    filtered = ok_json("tools", "list", "--group", "server", "--json")
    assert [t["name"] for t in filtered["tools"]] == [
        "server.create",
        "server.delete",
        "server.get",
        "server.list",
        "server.refresh",
        "server.register",
        "server.remove",
    ]


def test_fast_commands_import_no_heavy_module() -> None:
    for argv in (["tools", "list"], ["--help"], ["server", "list", "--help"]):
        assert not modules_after(argv) & set(HEAVY), argv


def test_call_with_key_value_and_with_json() -> None:
    data = ok_json("call", "server.register", "name=web-1", "labels.env=dev", "address=null")
    assert (data["name"], data["labels"], data["address"]) == ("web-1", {"env": "dev"}, None)
    given = '{"name": "web-2", "labels": {"app.kubernetes.io/name": "web"}}'
    data = ok_json("call", "server.register", "--json", given)
    assert data["labels"] == {"app.kubernetes.io/name": "web"}
    done = prvng("call", "server.register", "--json", "-", stdin='{"name": "web-3"}')
    assert done.returncode == 0 and json.loads(done.stdout)["name"] == "web-3"
    # key=value pairs on both sides of an option
    data = ok_json("call", "server.register", "name=web-4", "--output", "json", "labels.a=b")
    assert data["labels"] == {"a": "b"}


def test_generated_subcommand_with_flags_and_nested_labels() -> None:
    data = ok_json(
        "server", "register", "--name", "web-1", "--address", "10.0.0.1",
        "--labels", "env=dev", "--labels", "app.kubernetes.io/name=web",
    )  # fmt: skip
    assert data["address"] == "10.0.0.1"
    assert data["labels"] == {"env": "dev", "app.kubernetes.io/name": "web"}
    table = prvng("platform", "info", "--output", "table")
    assert table.returncode == 0
    rows = dict(line.split(None, 1) for line in table.stdout.splitlines()[1:])
    assert rows["name"] == "provisioning-platform" and rows["state_backend"] == "mem"


def test_failures_exit_with_the_table_code_and_say_why() -> None:
    bad = prvng("server", "register", "--name", "Not_A_Name")
    assert bad.returncode == 2
    assert bad.stderr.startswith("error[invalid_input]: invalid input for server.register: name")
    assert "prvng server register --help" in bad.stderr
    missing = prvng("server", "get", "--name", "nope")
    assert missing.returncode == 3 and missing.stderr.startswith("error[not_found]")
    assert missing.stdout == ""


def test_json_output_puts_the_failure_envelope_on_stderr() -> None:
    done = prvng("call", "server.get", "name=nope", "--output", "json", "--trace-id", "trace-cli-1")
    assert done.returncode == 3 and done.stdout == ""
    envelope = json.loads(done.stderr)
    assert envelope["ok"] is False and envelope["trace_id"] == "trace-cli-1"
    assert set(envelope) == {"ok", "error", "trace_id", "timestamp"}
    assert envelope["error"]["code"] == "not_found"
    assert set(envelope["error"]) == {"code", "message", "details"}
    invalid = prvng("call", "server.list", "--json", '{"limit": 0}', "--output", "json")
    assert invalid.returncode == 2
    assert json.loads(invalid.stderr)["error"]["details"]["errors"][0]["loc"] == "limit"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["server", "list", "--limit", "many"], "argument --limit: expected an integer"),
        (["server", "list", "--colour"], "unrecognized arguments: --colour"),
        (["call", "server.list", "limit=many"], "limit: expected an integer"),
        (["call", "server.list", "--json", "[1]"], "must be a JSON object"),
        (["call", "server.list", "--json", "{}", "limit=1"], "not both"),
        (["daemon", "nope"], "unknown daemon 'nope'; known daemons: "),
        ([], "usage: prvng"),
    ],
)
def test_bad_command_lines_exit_2(argv: list[str], message: str) -> None:
    done = prvng(*argv)
    assert done.returncode == 2 and message in done.stderr


def test_help_comes_from_the_schemas() -> None:
    top = prvng("--help")
    assert top.returncode == 0
    assert "server" in top.stdout
    server_line = " ".join(top.stdout.split("    server ", 1)[1].split()[:8])  # may wrap
    assert server_line == "commands: create, delete, get, list, refresh, register, remove"
    register = prvng("server", "register", "--help").stdout
    assert "DNS-label name: lowercase letters" in register and "(required)" in register
    assert "--labels KEY=VALUE" in register and "risk: write" in register
    listing = prvng("server", "list", "--help").stdout
    assert "--limit N" in listing and "integer 1..1000" in listing and "(default: 100)" in listing
    assert "Only servers of this provider" in listing and "--trace-id ID" in listing


def test_a_stale_or_corrupt_cache_is_rebuilt(
    tmp_path: Path, listing: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    cache_dir = tmp_path / "own-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_dir))
    stale = cache_dir / "provisioning" / "cli-listing-0123456789abcdef0123.json"
    stale.parent.mkdir(parents=True)
    stale.write_text('{"listing": {"tools": []}, "exit_codes": {}}')
    assert ok_json("tools", "list", "--json") == listing
    [current] = stale.parent.glob("cli-listing-*.json")
    assert current != stale
    current.write_text("{not json")
    assert ok_json("tools", "list", "--json") == listing
    assert json.loads(current.read_text())["listing"] == listing


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_url_exits_8() -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    done = prvng("--url", url, "server", "list")
    assert done.returncode == 8
    assert f"cannot reach the platform at {url}" in done.stderr
    assert "prvng platform status" in done.stderr


@pytest.fixture
def file_home(monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A home whose state is a surrealkv file, so only one process may open it."""
    monkeypatch.delenv("PRVNG_SURREAL_URL")
    return Settings.from_env()


@pytest.fixture
def platform(file_home: Settings, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`prvng platform start --port 0` in the foreground, as a child; ready once its run
    file appears."""
    from servers.runfile import read_run_file

    log = (tmp_path / "platform.log").open("wb")
    proc = subprocess.Popen([PRVNG, "platform", "start", "--port", "0"], stdout=log, stderr=log)
    try:
        for _ in range(600):  # 30 s, paced by waiting on the child itself
            if read_run_file(file_home.run_file) is not None:
                break
            try:
                code = proc.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                continue
            pytest.fail(f"the platform exited ({code}): {(tmp_path / 'platform.log').read_text()}")
        else:
            pytest.fail("the platform wrote no run file within 30 s")
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)
        log.close()


def test_remote_mode_talks_to_the_running_platform(
    platform: subprocess.Popen[bytes], file_home: Settings, listing: dict[str, Any]
) -> None:
    assert ok_json("platform", "info")["pid"] == platform.pid  # not this CLI process
    registered = ok_json("server", "register", "--name", "web-1", "--labels", "env=dev")
    listed = ok_json("server", "list", "--labels", "env=dev")
    assert listed == {"servers": [registered], "total": 1}
    assert not modules_after(["server", "list"]) & set(HEAVY)

    status = prvng("platform", "status")
    assert status.returncode == 0 and "health: ok" in status.stdout
    info = ok_json("platform", "status", "--json")
    assert info["running"] is True and info["pid"] == platform.pid
    url = info["url"]
    assert ok_json("--url", url, "tools", "list", "--json") == listing
    wrong = prvng("--url", url, "--api-key", "prvng_000000000000_nope", "server", "list")
    assert wrong.returncode == 4 and wrong.stderr.startswith("error[unauthenticated]")

    stopped = prvng("platform", "stop")
    assert stopped.returncode == 0 and f"pid {platform.pid}" in stopped.stdout
    assert platform.wait(timeout=30) == 0 and not file_home.run_file.exists()
    after = prvng("platform", "status")
    assert after.returncode == 8 and "not running" in after.stdout


def test_background_start_prints_the_url_once_healthy(file_home: Settings) -> None:
    from servers.runfile import read_run_file

    started = prvng("platform", "start", "--background", "--port", "0")
    try:
        assert started.returncode == 0, started.stderr
        info = read_run_file(file_home.run_file)
        assert info is not None and started.stdout.strip() == info.url
        assert prvng("platform", "status").returncode == 0
        assert (file_home.logs_dir / "platform.log").read_text().count("platform ready at") == 1
    finally:
        assert prvng("platform", "stop").returncode == 0
    assert read_run_file(file_home.run_file) is None


def test_mcp_serves_stdio(tmp_path: Path) -> None:
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"},
        },
    }
    with (tmp_path / "mcp.log").open("wb") as log:
        proc = subprocess.Popen(
            [PRVNG, "mcp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log
        )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(json.dumps(initialize).encode() + b"\n")
        proc.stdin.flush()
        readable, _, _ = select.select([proc.stdout], [], [], 30)
        assert readable, "no MCP answer within 30 s"
        answer = json.loads(proc.stdout.readline())
        assert answer["id"] == 1 and "tools" in answer["result"]["capabilities"]
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()


def test_version_prints_the_platform_version_without_the_heavy_imports() -> None:
    from daemons.common.version import platform_version

    done = prvng("--version")
    assert (done.returncode, done.stdout.strip()) == (0, f"prvng {platform_version()}"), done.stderr
    assert not set(HEAVY) & modules_after(["--version"])
