"""The server inventory on a real embedded SurrealDB (memory and file backed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from daemons.common.state import StateStore
from registry import Principal, Registry
from registry.errors import Unavailable
from registry.schema import input_schema


async def test_register_get_list_remove(registry: Registry, owner: Principal) -> None:
    reg = await registry.invoke(
        "server.register", {"name": "web-1", "labels": {"env": "dev"}}, principal=owner
    )
    assert reg.ok and reg.data["status"] == "registered" and reg.data["labels"] == {"env": "dev"}
    assert (await registry.invoke("server.register", {"name": "db-1"}, principal=owner)).ok

    got = await registry.invoke("server.get", {"name": "web-1"}, principal=owner)
    assert got.data == reg.data

    listed = await registry.invoke("server.list", {"labels": {"env": "dev"}}, principal=owner)
    assert [s["name"] for s in listed.data["servers"]] == ["web-1"] and listed.data["total"] == 1
    page = await registry.invoke("server.list", {"limit": 1, "offset": 1}, principal=owner)
    assert [s["name"] for s in page.data["servers"]] == ["web-1"] and page.data["total"] == 2

    removed = await registry.invoke("server.remove", {"name": "web-1"}, principal=owner)
    assert removed.data == {"name": "web-1", "removed": True}
    gone = await registry.invoke("server.get", {"name": "web-1"}, principal=owner)
    assert gone.code == "not_found" and "web-1" in gone.error["message"]  # type: ignore[index]


async def test_duplicate_register_conflicts_and_keeps_the_first(
    registry: Registry, owner: Principal
) -> None:
    await registry.invoke(
        "server.register", {"name": "web-1", "address": "10.0.0.1"}, principal=owner
    )
    dup = await registry.invoke("server.register", {"name": "web-1"}, principal=owner)
    assert dup.code == "conflict"
    got = await registry.invoke("server.get", {"name": "web-1"}, principal=owner)
    assert got.data["address"] == "10.0.0.1"


async def test_file_store_survives_reopen_and_is_single_owner(tmp_path: Path) -> None:
    url = f"surrealkv://{tmp_path / 'state'}"
    async with StateStore.open(url) as store:
        await store.create("server", "a", {"name": "a"})
        with pytest.raises(Unavailable, match="in use by pid"):
            async with StateStore.open(url):
                pass
    async with StateStore.open(url) as store:
        assert await store.get("server", "a") == {"id": "a", "name": "a"}


async def test_deleted_servers_are_hidden_unless_asked_and_their_names_can_be_reused(
    registry: Registry, owner: Principal
) -> None:
    async def call(tool: str, **args: Any) -> Any:
        env = await registry.invoke(tool, args, principal=owner)
        assert env.ok, env.error
        return env.data

    lab = {"config": "examples/lab.ncl", "names": ["lab-1"], "wait": True}
    assert (await call("server.create", **lab))["state"] == "succeeded"
    await call("server.register", name="web-1")
    assert (await call("server.delete", names=["lab-1"], wait=True))["state"] == "succeeded"

    listed = await call("server.list")
    assert ([s["name"] for s in listed["servers"]], listed["total"]) == (["web-1"], 1)
    everything = await call("server.list", all=True)
    assert {s["name"]: s["status"] for s in everything["servers"]} == {
        "lab-1": "deleted",
        "web-1": "registered",
    }

    again = await call("server.register", name="lab-1", labels={"env": "dev"})
    assert (again["status"], again["labels"], again["taskservs"]) == (
        "registered",
        {"env": "dev"},
        [],
    )
    assert again["sandbox"] is None
    assert (await registry.invoke("server.register", {"name": "lab-1"}, principal=owner)).code == (
        "conflict"
    )  # a live name is still taken


async def test_labels_are_spelled_one_way_on_every_tool(
    registry: Registry, owner: Principal
) -> None:
    """Setting and filtering alike: `labels`, an object of key → value."""
    spelled = {
        (spec.name, field): prop.get("type") or [o.get("type") for o in prop.get("anyOf", [])]
        for spec in registry.list()
        for field, prop in input_schema(spec.input_model).get("properties", {}).items()
        if field.startswith("label")
    }
    assert {field for _, field in spelled} == {"labels"}, spelled
    assert {("server.list", "labels"), ("workflow.list", "labels")} <= set(spelled)
    assert spelled[("workflow.list", "labels")] == spelled[("server.list", "labels")] == "object"

    for wf_id, env in (("lbl-1", "dev"), ("lbl-2", "lab")):  # both run without approval
        tasks = [{"id": "a", "action": "noop"}]
        args = {"id": wf_id, "name": wf_id, "labels": {"env": env, "team": "a"}, "tasks": tasks}
        assert (await registry.invoke("workflow.submit", args, principal=owner)).ok
    found = await registry.invoke(
        "workflow.list", {"labels": {"env": "dev", "team": "a"}}, principal=owner
    )
    assert [w["id"] for w in found.data["workflows"]] == ["lbl-1"]
