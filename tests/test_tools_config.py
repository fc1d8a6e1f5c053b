"""Nickel configuration: evaluation, contracts and precise error locations."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from daemons.common.settings import Settings
from registry import Principal, Registry


async def test_validate_the_shipped_workspace(registry: Registry, owner: Principal) -> None:
    env = await registry.invoke("config.validate", {"path": "workspace.ncl"}, principal=owner)
    assert env.ok and env.data == {
        "path": "workspace.ncl",
        "valid": True,
        "top_level_fields": ["name", "servers"],
    }


async def test_export_applies_defaults_from_contracts(registry: Registry, owner: Principal) -> None:
    env = await registry.invoke("config.export", {"path": "workspace.ncl"}, principal=owner)
    servers = env.data["value"]["servers"]
    assert servers[1]["provider"] == "local" and servers[0]["taskservs"][0]["port"] == 18081


async def test_contract_violation_points_at_the_offending_line(
    registry: Registry, owner: Principal
) -> None:
    env = await registry.invoke(
        "config.validate", {"path": "examples/invalid-port.ncl"}, principal=owner
    )
    assert env.code == "invalid_input"
    details = env.error["details"]  # type: ignore[index]
    assert (details["file"], details["line"]) == ("examples/invalid-port.ncl", 5)
    assert "contract broken" in details["nickel_error"]
    assert "examples/invalid-port.ncl:5:" in env.error["message"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("path", "code"),
    [("nope.ncl", "not_found"), ("../pyproject.ncl", "invalid_input"), ("x.json", "invalid_input")],
)
async def test_bad_paths(registry: Registry, owner: Principal, path: str, code: str) -> None:
    env = await registry.invoke("config.export", {"path": path}, principal=owner)
    assert env.code == code


async def test_syntax_error_in_a_user_workspace(
    registry: Registry, owner: Principal, tmp_path: Path, settings: Settings
) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "bad.ncl").write_text("{\n  a = 1,\n  b = ,\n}\n")
    registry.resources.put(Settings, replace(settings, config_dir=ws))
    env = await registry.invoke("config.validate", {"path": "bad.ncl"}, principal=owner)
    assert env.code == "invalid_input"
    assert env.error["details"]["line"] == 3  # type: ignore[index]
