"""The CLI's pure parts: schema-guided value coercion, the cache fingerprint, rendering."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from registry import Registry
from servers.cli.cache import fingerprint
from servers.cli.output import as_table, render_failure
from servers.cli.values import parse_assignments
from servers.coercion import UsageError, coerce


@pytest.fixture
async def schemas(registry: Registry) -> dict[str, dict[str, Any]]:
    """The real input schemas of the real tools, as the CLI's cache holds them."""
    return {tool.name: tool.input_schema for tool in registry.listing().tools}


async def test_assignments_follow_the_tool_schema(schemas: dict[str, dict[str, Any]]) -> None:
    args = parse_assignments(
        ["limit=5", "offset=0", "labels.env=dev", "labels.app.kubernetes.io/name=web"],
        schemas["server.list"],
    )
    assert args == {
        "limit": 5,
        "offset": 0,
        "labels": {"env": "dev", "app.kubernetes.io/name": "web"},
    }
    register = parse_assignments(
        ["name=007", 'labels={"a": "b"}', "labels.c=d", "address=null"],
        schemas["server.register"],
    )
    # "007" stays a string (the schema says string); a JSON object and a key merge.
    assert register == {"name": "007", "labels": {"a": "b", "c": "d"}, "address": None}


@pytest.mark.parametrize(
    ("raw", "schema", "expected"),
    [
        ("yes", {"type": "boolean"}, True),
        ("off", {"type": "boolean"}, False),
        ("2.5", {"type": "number"}, 2.5),
        ("3", {"anyOf": [{"type": "integer"}, {"type": "null"}]}, 3),
        ("null", {"anyOf": [{"type": "integer"}, {"type": "null"}]}, None),
        ("a", {"type": "array", "items": {"type": "string"}}, ["a"]),
        ("[1, 2]", {"type": "array", "items": {"type": "integer"}}, [1, 2]),
        ("7", {"type": "array", "items": {"type": "integer"}}, [7]),
        ("{}", {}, {}),
        ("plain", {}, "plain"),
    ],
)
def test_coerce(raw: str, schema: dict[str, Any], expected: Any) -> None:
    assert coerce(raw, schema) == expected


@pytest.mark.parametrize(
    ("raw", "schema", "message"),
    [
        ("x", {"type": "integer"}, "expected an integer"),
        ("maybe", {"type": "boolean"}, "expected true or false"),
        ("[1]", {"type": "object"}, "expected a JSON object"),
        ("ssh", {"enum": ["local", "aws"]}, "not one of: local, aws"),
    ],
)
def test_coerce_rejects_with_a_reason(raw: str, schema: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        coerce(raw, schema)


def test_repeated_array_keys_append_and_bad_pairs_fail() -> None:
    schema = {"properties": {"tags": {"type": "array", "items": {"type": "string"}}}}
    assert parse_assignments(["tags=a", "tags=b"], schema) == {"tags": ["a", "b"]}
    with pytest.raises(UsageError, match="expected key=value"):
        parse_assignments(["tags"], schema)


def test_fingerprint_changes_with_any_source_file(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    module = package / "sub" / "mod.py"
    module.write_text("x = 1\n")
    (package / "README.txt").write_text("not python")
    before = fingerprint([package], ["pkg-1.0.dist-info"])
    assert fingerprint([package], ["pkg-1.0.dist-info"]) == before
    assert fingerprint([package], ["pkg-1.1.dist-info"]) != before
    stat = module.stat()
    os.utime(module, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    touched = fingerprint([package], ["pkg-1.0.dist-info"])
    assert touched != before
    (package / "README.txt").write_text("still not python, longer")
    assert fingerprint([package], ["pkg-1.0.dist-info"]) == touched


def test_table_of_one_list_of_objects_and_key_value_rows() -> None:
    data = {
        "servers": [
            {"name": "web-1", "labels": {"env": "dev"}, "address": None},
            {"name": "db-10", "labels": {}, "address": "10.0.0.2"},
        ],
        "total": 2,
    }
    lines = as_table(data).splitlines()
    assert lines[0].split() == ["NAME", "ADDRESS"]  # the dict column is not scalar
    assert lines[1].split() == ["web-1", "-"] and lines[2].split() == ["db-10", "10.0.0.2"]
    assert lines[-1] == "2 total"
    server = {"name": "web-1", "labels": {"env": "dev"}, "taskservs": []}
    rows = [line.split() for line in as_table(server).splitlines()]
    assert rows[1:] == [["name", "web-1"], ["labels", '{"env":"dev"}'], ["taskservs", "[]"]]
    assert as_table({"servers": [], "total": 0}) == "(none)\n\n0 total"


def test_a_table_of_a_page_says_how_to_get_the_next_one() -> None:
    servers = {"servers": [{"name": f"s-{i}"} for i in range(100)], "total": 211}
    assert (
        as_table(servers, {"offset": 0}).splitlines()[-1] == "211 total — next page: --offset 100"
    )
    assert as_table(servers, {"offset": 200}).splitlines()[-1] == "211 total"
    workflows = {"workflows": [{"id": "wf-1"}], "next_cursor": "MTc2NC8x"}
    assert as_table(workflows).splitlines()[-1] == "next page: --cursor MTc2NC8x"
    last_page = {"workflows": [{"id": "wf-1"}], "next_cursor": None}
    assert as_table(last_page).splitlines() == ["ID", "wf-1"]


def test_several_lists_of_objects_are_tables_with_a_title_each() -> None:
    data = {
        "available": [{"name": "kv-store", "version": "1.0.0", "settings": {"port": 1}}],
        "installed": [{"server": "web-1", "name": "kv-store", "status": "down"}],
    }
    text = as_table(data)
    assert "{" not in text  # columns, not JSON blobs
    assert text.splitlines() == [
        "available:",
        "NAME      VERSION",
        "kv-store  1.0.0",
        "",
        "installed:",
        "SERVER  NAME      STATUS",
        "web-1   kv-store  down",
    ]


def test_failure_rendering_names_the_next_step() -> None:
    envelope = {
        "ok": False,
        "error": {"code": "invalid_input", "message": "bad", "details": {"errors": []}},
        "trace_id": "t-1",
        "timestamp": "now",
    }
    text = render_failure(envelope, as_json=False, help_command="prvng server get --help")
    assert text.splitlines() == [
        "error[invalid_input]: bad",
        "hint: check the arguments: `prvng server get --help`",
        "trace: t-1",
    ]
