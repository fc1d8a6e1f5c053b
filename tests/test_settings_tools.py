"""The settings tools on good and broken workspaces: generated configs meet the schemas
(checked by `config.validate`, the same evaluator), validation points at the line with a
fix, every best-practice rule fires on a case built for it and stays quiet on the
shipped workspaces, plans match `server.create --plan`, completion names what it filled,
and `tools.help` gives example calls that work."""

from __future__ import annotations

import asyncio
import json
import shlex
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from daemons.common.settings import PROJECT_ROOT, Settings
from registry import Principal, Registry
from tests.conftest import environ_snapshot
from tools.settings.rules import RULES

PRVNG = str(Path(sys.executable).with_name("prvng"))
SCHEMA = 'let s = import "schemas/server.ncl" in\n'


async def _ok(registry: Registry, owner: Principal, tool: str, args: dict[str, Any]) -> Any:
    env = await registry.invoke(tool, args, principal=owner)
    assert env.ok, env.error
    return env.data


@pytest.fixture
def workspace(tmp_path: Path, registry: Registry, settings: Settings) -> Path:
    """An empty workspace dir with the shipped schemas, as the registry's config dir."""
    ws = tmp_path / "ws"
    shutil.copytree(PROJECT_ROOT / "config" / "schemas", ws / "schemas")
    registry.resources.put(Settings, replace(settings, config_dir=ws))
    return ws


# settings.generate


@pytest.mark.parametrize("mode", ["solo", "multiuser", "cicd", "enterprise"])
async def test_generated_configs_meet_the_schemas(
    registry: Registry, owner: Principal, workspace: Path, mode: str
) -> None:
    made = await _ok(registry, owner, "settings.generate", {"mode": mode, "name": "acme"})
    (workspace / "gen.ncl").write_text(made["nickel"])
    checked = await _ok(registry, owner, "config.validate", {"path": "gen.ncl"})
    assert checked["valid"] and checked["top_level_fields"] == ["name", "servers"]
    exported = await _ok(registry, owner, "config.export", {"path": "gen.ncl"})
    assert exported["value"] == made["value"]
    assert all(s["labels"]["mode"] == mode for s in made["value"]["servers"])
    advice = await _ok(registry, owner, "settings.recommend", {"text": made["nickel"]})
    assert advice["findings"] == []  # what we generate follows our own rules


async def test_generate_answers_count_and_env(registry: Registry, owner: Principal) -> None:
    args = {"mode": "multiuser", "name": "team", "servers": 5, "env": "staging"}
    made = await _ok(registry, owner, "settings.generate", args)
    servers = made["value"]["servers"]
    assert len(servers) == 5 and {s["labels"]["env"] for s in servers} == {"staging"}
    ports = [t["port"] for s in servers for t in s.get("taskservs", []) if "port" in t]
    assert len(ports) == len(set(ports)) == 3  # web servers never share a port


async def test_generate_refuses_unknown_answers(registry: Registry, owner: Principal) -> None:
    for bad in ({"mode": "huge", "name": "x"}, {"mode": "solo", "name": "Bad_Name"}):
        env = await registry.invoke("settings.generate", bad, principal=owner)
        assert env.code == "invalid_input"


# settings.validate


async def test_validate_points_at_the_broken_port_with_a_fix(
    registry: Registry, owner: Principal
) -> None:
    got = await _ok(registry, owner, "settings.validate", {"path": "examples/invalid-port.ncl"})
    [issue] = got["issues"]
    assert not got["valid"]
    assert (issue["file"], issue["line"], issue["column"]) == ("examples/invalid-port.ncl", 5, 75)
    assert "`port`" in issue["message"] and "65535" in issue["fix"]


async def test_validate_the_shipped_workspaces(registry: Registry, owner: Principal) -> None:
    for path in ("workspace.ncl", "examples/lab.ncl"):
        got = await _ok(registry, owner, "settings.validate", {"path": path})
        assert got == {"source": path, "valid": True, "issues": []}


@pytest.mark.parametrize(
    ("text", "line", "fix"),
    [
        (
            SCHEMA + '{ name = "x",\n servers = [{ name = "a", size = 2 }] } | s.Workspace',
            3,
            "remove `size`",
        ),
        (SCHEMA + "{ servers = [] } | s.Workspace", 2, "add `name = ...`"),
        (
            SCHEMA + '{ name = "x", servers = [{ name = "a", provider = "local" }] } | s.Workspace',
            2,
            "enum tag",
        ),
        (
            SCHEMA
            + '{ name = "x", servers = [{ name = "a", labels = { env = 1 } }] } | s.Workspace',
            2,
            "string value",
        ),
        ("{\n  a = 1,\n  b = ,\n}\n", 3, "fix the syntax"),
        ('import "nowhere.ncl"', None, "fix the import path `nowhere.ncl`"),
    ],
)
async def test_validate_maps_contract_failures_to_fixes(
    registry: Registry, owner: Principal, text: str, line: int | None, fix: str
) -> None:
    got = await _ok(registry, owner, "settings.validate", {"text": text})
    [issue] = got["issues"]
    assert (got["valid"], issue["file"], issue["line"]) == (False, "<text>", line)
    assert fix in issue["fix"], issue
    assert "prvng-settings-" not in json.dumps(got)  # no temporary path leaks


async def test_validate_checks_what_the_template_refuses(
    registry: Registry, owner: Principal
) -> None:
    twice = SCHEMA + '{ name = "x", servers = [{ name = "a" }, { name = "a" }] } | s.Workspace'
    unknown = SCHEMA + '{ name = "x", servers = [{ name = "a", taskservs = [{ name = "nope" }] }] }'
    for text, fix in ((twice, "unique"), (unknown + " | s.Workspace", "taskserv list")):
        got = await _ok(registry, owner, "settings.validate", {"text": text})
        assert not got["valid"] and fix in got["issues"][0]["fix"], got


async def test_validate_needs_exactly_one_source(registry: Registry, owner: Principal) -> None:
    for args in ({}, {"path": "workspace.ncl", "text": "{}"}):
        env = await registry.invoke("settings.validate", args, principal=owner)
        assert env.code == "invalid_input"


async def test_text_imports_stay_inside_the_workspace(registry: Registry, owner: Principal) -> None:
    env = await registry.invoke(
        "settings.validate", {"text": 'import "/etc/hostname"'}, principal=owner
    )
    assert env.code == "forbidden", env


# settings.recommend


async def test_rules_stay_quiet_on_the_shipped_workspaces(
    registry: Registry, owner: Principal
) -> None:
    for path in ("workspace.ncl", "examples/lab.ncl"):
        got = await _ok(registry, owner, "settings.recommend", {"path": path})
        assert got["findings"] == [], got["findings"]
        assert got["rules_checked"] == [rule.id for rule in RULES]


def _ws(*servers: str) -> str:
    return '{ name = "x", servers = [' + ", ".join(servers) + "] }"


_DEV = 'labels = { env = "dev" }'
_CASES: dict[str, str] = {
    "net.bind-all": _ws(
        f'{{ name = "a", {_DEV}, taskservs = [{{ name = "kv-store", bind = "0.0.0.0" }}] }}'
    ),
    "net.port-conflict": _ws(
        f'{{ name = "a", {_DEV}, taskservs = [{{ name = "static-web" }}] }}',
        f'{{ name = "b", {_DEV}, taskservs = [{{ name = "static-web", port = 18081 }}] }}',
    ),
    "net.privileged-port": _ws(
        f'{{ name = "a", {_DEV}, taskservs = [{{ name = "static-web", port = 80 }}] }}'
    ),
    "taskserv.unknown": _ws(f'{{ name = "a", {_DEV}, taskservs = [{{ name = "nope" }}] }}'),
    "health.missing": _ws(f'{{ name = "a", {_DEV}, taskservs = [{{ name = "no-health" }}] }}'),
    "version.unpinned": _ws(
        f'{{ name = "a", {_DEV}, taskservs = [{{ name = "kv-store", version = "latest" }}] }}',
        f'{{ name = "b", {_DEV}, taskservs = [{{ name = "floating" }}] }}',
    ),
    "policy.prod-approval": _ws('{ name = "a", labels = { env = "prod" } }'),
    "secret.plaintext": _ws(
        f'{{ name = "a", {_DEV}, taskservs = [{{ name = "kv-store", db_password = "hunter2" }}] }}',
        '{ name = "b", labels = { env = "dev", note = "-----BEGIN RSA PRIVATE KEY-----" } }',
    ),
    "labels.no-env": _ws('{ name = "a" }'),
}


def test_every_rule_has_a_case() -> None:
    assert set(_CASES) == {rule.id for rule in RULES}


@pytest.fixture
def rules_workspace(workspace: Path) -> Path:
    """A workspace whose own catalog has a taskserv without health check and one with a
    floating version, and whose keeper policy auto-approves everything."""
    for name, extra in (("no-health", 'version = "1.0.0"'), ("floating", 'version = "^1.2"')):
        entry = workspace / "taskservs" / name
        entry.mkdir(parents=True)
        health = "" if name == "no-health" else ', health = { kind = \'command, command = "true" }'
        (entry / "taskserv.ncl").write_text(
            f'{{ name = "{name}", description = "test", {extra}, settings = {{}}{health} }}\n'
        )
    (workspace / "keeper_policy.ncl").write_text(
        '{ rules = [{ name = "yes-to-all", decision = \'auto_approve }] }\n'
    )
    return workspace


@pytest.mark.parametrize("rule", sorted(_CASES))
async def test_each_rule_fires_on_its_case(
    registry: Registry, owner: Principal, rules_workspace: Path, rule: str
) -> None:
    got = await _ok(registry, owner, "settings.recommend", {"text": _CASES[rule]})
    fired = {f["rule"] for f in got["findings"]}
    assert fired == {rule}, got["findings"]
    expected = 2 if rule in ("version.unpinned", "secret.plaintext") else 1
    assert len(got["findings"]) == expected
    assert all(f["fix"] and f["where"].startswith("servers[") for f in got["findings"])


async def test_prod_is_fine_under_the_shipped_policy(registry: Registry, owner: Principal) -> None:
    got = await _ok(registry, owner, "settings.recommend", {"text": _CASES["policy.prod-approval"]})
    assert got["findings"] == []  # its `prod-needs-approval` rule matches first


async def test_min_severity_filters(registry: Registry, owner: Principal) -> None:
    text = _ws('{ name = "a", labels = { token = "abc" } }')
    every = await _ok(registry, owner, "settings.recommend", {"text": text})
    assert [f["rule"] for f in every["findings"]] == ["secret.plaintext", "labels.no-env"]
    serious = await _ok(
        registry, owner, "settings.recommend", {"text": text, "min_severity": "error"}
    )
    assert [f["rule"] for f in serious["findings"]] == ["secret.plaintext"]


async def test_a_secret_reference_is_not_plaintext(registry: Registry, owner: Principal) -> None:
    ref = '{ name = "kv-store", token = { secret = "kv" } }'
    text = _ws(f'{{ name = "a", {_DEV}, taskservs = [{ref}] }}')
    got = await _ok(registry, owner, "settings.recommend", {"text": text})
    assert got["findings"] == []


# settings.plan

LAB = {"path": "examples/lab.ncl"}


async def test_plan_of_the_lab_against_an_empty_inventory(
    registry: Registry, owner: Principal
) -> None:
    got = await _ok(registry, owner, "settings.plan", LAB)
    assert got["summary"] == {"create": 3, "update": 0, "delete": 0, "no-op": 0}
    assert [(c["action"], c["name"]) for c in got["changes"]] == [
        ("create", "lab-1"),
        ("create", "lab-2"),
        ("create", "lab-2/kv-store"),
    ]
    server_plan = await _ok(
        registry, owner, "server.create", {"config": "examples/lab.ncl", "plan": True}
    )
    assert (got["digest"], got["state_digest"]) == (
        server_plan["digest"],
        server_plan["state_digest"],
    )


async def test_plan_of_a_change_against_created_servers(
    registry: Registry, owner: Principal
) -> None:
    create = {"config": "examples/lab.ncl", "names": ["lab-2"], "wait": True}
    await _ok(registry, owner, "server.create", create)
    changed = SCHEMA + (
        '{ name = "lab", servers = [{ name = "lab-1", labels = { env = "lab" } },'
        ' { name = "lab-2", labels = { env = "dev" } }] } | s.Workspace'
    )
    got = await _ok(registry, owner, "settings.plan", {"text": changed})
    assert [(c["action"], c["name"]) for c in got["changes"]] == [
        ("create", "lab-1"),
        ("update", "lab-2"),
    ]
    assert got["drift"] == ["lab-2/kv-store"]  # installed, no longer in the config
    again = await _ok(registry, owner, "settings.plan", {**LAB, "names": ["lab-2"]})
    assert again["summary"] == {"create": 0, "update": 0, "delete": 0, "no-op": 2}


async def test_plan_of_a_broken_config(registry: Registry, owner: Principal) -> None:
    env = await registry.invoke(
        "settings.plan", {"path": "examples/invalid-port.ncl"}, principal=owner
    )
    assert env.code == "invalid_input" and env.error["details"]["line"] == 5  # type: ignore[index]


# settings.complete


async def test_complete_fills_the_schema_defaults(
    registry: Registry, owner: Principal, workspace: Path
) -> None:
    partial = {
        "name": "home",
        "servers": [{"name": "web-1", "labels": {"env": "dev"}}, {"name": "db-1"}],
    }
    got = await _ok(registry, owner, "settings.complete", {"value": partial})
    assert got["filled"] == [
        "servers[0].provider",
        "servers[0].taskservs",
        "servers[1].labels",
        "servers[1].provider",
        "servers[1].taskservs",
    ]
    assert got["value"]["servers"][1] == {
        "name": "db-1",
        "labels": {},
        "provider": "local",
        "taskservs": [],
    }
    (workspace / "done.ncl").write_text(got["nickel"])
    exported = await _ok(registry, owner, "config.export", {"path": "done.ncl"})
    assert exported["value"] == got["value"]
    bare = await _ok(registry, owner, "settings.complete", {"value": {"name": "bare"}})
    assert bare["filled"] == ["servers"]


async def test_complete_says_what_has_no_default(registry: Registry, owner: Principal) -> None:
    env = await registry.invoke("settings.complete", {"value": {"servers": []}}, principal=owner)
    assert env.code == "invalid_input"
    assert "`name`" in env.error["message"] and "no default" in env.error["message"]  # type: ignore[index]


# tools.help


async def test_help_on_a_tool(registry: Registry, owner: Principal) -> None:
    got = await _ok(registry, owner, "tools.help", {"tool": "task.logs"})
    [entry] = got["tools"]
    assert entry["required"] == ["workflow_id: string", "task_id: string"]
    assert entry["risk"] == "read" and entry["approval"] == "none"
    assert entry["examples"]["prvng"].startswith("prvng task logs --workflow-id ")
    create = (await _ok(registry, owner, "tools.help", {"tool": "server.create"}))["tools"][0]
    assert "keeper policy" in create["approval"] and create["permission"] == "server:write"


async def test_help_examples_run(registry: Registry, owner: Principal, settings: Settings) -> None:
    """The `prvng` and MCP examples of a tool are calls that work."""
    got = await _ok(registry, owner, "tools.help", {"tool": "settings.validate"})
    examples = got["tools"][0]["examples"]
    mcp = json.loads(examples["mcp"])
    assert mcp["params"] == {"name": "settings.validate", "arguments": {"path": "workspace.ncl"}}
    argv = [PRVNG, *shlex.split(examples["prvng"])[1:]]
    env = {**environ_snapshot(), "PRVNG_CONFIG": str(settings.config_dir)}
    done = await asyncio.to_thread(
        subprocess.run, argv, capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["valid"] is True


async def test_help_on_a_topic_and_typos(registry: Registry, owner: Principal) -> None:
    got = await _ok(registry, owner, "tools.help", {"topic": "workspace settings"})
    names = [t["name"] for t in got["tools"]]
    assert {"settings.validate", "settings.plan"} <= set(names)
    env = await registry.invoke("tools.help", {"tool": "settings.validat"}, principal=owner)
    assert env.code == "not_found" and "settings.validate" in env.error["message"]  # type: ignore[index]
    toolsets = (await _ok(registry, owner, "tools.help", {}))["toolsets"]
    assert "settings.generate" in toolsets["settings"] and "tools.help" in toolsets["platform"]


# Untrusted text: any caller with config:read may send Nickel to evaluate.

_LOOP = "let rec f = fun x => f (x + 1) in f 0"


@pytest.mark.timeout(60)
async def test_text_that_never_finishes_is_cut_off(
    registry: Registry, owner: Principal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A non-terminating text must not hold a thread (nor a cache slot) for ever: enough
    of them would stall every config read and every `to_thread` of the platform."""
    monkeypatch.setattr("tools.settings.source.TEXT_TIMEOUT_S", 2.0)
    calls = [
        registry.invoke(tool, {"text": _LOOP}, principal=owner)
        for tool in ("settings.validate", "settings.recommend", "settings.plan")
        for _ in range(3)
    ]
    for env in await asyncio.gather(*calls):
        if env.ok:  # settings.validate answers the failure as an issue
            [issue] = env.data["issues"]
            assert "did not finish" in issue["message"]
        else:
            assert env.code == "invalid_input" and "did not finish" in env.error["message"]  # type: ignore[index]
    still = await _ok(registry, owner, "settings.validate", {"path": "workspace.ncl"})
    assert still["valid"]
