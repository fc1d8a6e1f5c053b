"""The invocation pipeline: every step, in order, with the error each one produces."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from pydantic import Field

from daemons.common.keystore import KeyStore
from daemons.common.settings import Settings
from registry import (
    ContractCase,
    JsonlAuditSink,
    Principal,
    Registry,
    Risk,
    StrictModel,
    ToolContext,
    ToolSpec,
)
from registry.errors import ERROR_TABLE, ErrorCode, exit_code, http_status
from registry.model import RestAlias
from registry.ratelimit import TokenBucketLimiter, parse_limit
from registry.trace import trace_id_from_headers


class EchoIn(StrictModel):
    text: str = Field(max_length=10)


class EchoOut(StrictModel):
    text: str
    caller: str
    trace_id: str


async def echo(args: EchoIn, ctx: ToolContext) -> EchoOut:
    if args.text == "boom":
        raise RuntimeError("handler crashed")
    if args.text == "badout":
        return {"text": 1}  # type: ignore[return-value]  # deliberately wrong output
    return EchoOut(text=args.text, caller=ctx.principal.id, trace_id=ctx.trace_id)


def _spec(name: str, risk: Risk = Risk.READ, **kw: object) -> ToolSpec:
    return ToolSpec(
        name=name,
        summary="echo",
        input_model=EchoIn,
        output_model=EchoOut,
        handler=echo,
        permission="demo:read" if risk is Risk.READ else "demo:write",
        risk=risk,
        cases=(ContractCase("ok", {"text": "hi"}),),
        **kw,  # type: ignore[arg-type]  # test helper forwards optional fields
    )


@pytest.fixture
def audit_path(tmp_path: Path) -> Path:
    return tmp_path / "audit.jsonl"


@pytest.fixture
def demo(keystore: KeyStore, audit_path: Path) -> Registry:
    reg = Registry(
        authenticator=keystore,
        audit_sink=JsonlAuditSink(audit_path),
        rate_limiter=TokenBucketLimiter({"read": parse_limit("1/s:3")}),
    )
    reg.add(_spec("demo.echo"))
    reg.add(_spec("demo.write", Risk.WRITE))
    reg.add(_spec("demo.gated", Risk.WRITE, requires_approval=True))
    return reg


def _audit(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


async def test_success_envelope_carries_data_and_trace(demo: Registry, owner: Principal) -> None:
    env = await demo.invoke("demo.echo", {"text": "hi"}, principal=owner, trace_id="abc12345")
    assert env.ok and env.code is None
    assert env.data == {"text": "hi", "caller": "admin", "trace_id": "abc12345"}
    assert env.to_dict()["trace_id"] == "abc12345"
    assert env.timestamp.endswith("Z")


async def test_invalid_input_names_the_field(demo: Registry, owner: Principal) -> None:
    env = await demo.invoke("demo.echo", {"text": "x" * 11}, principal=owner)
    assert env.code == "invalid_input"
    assert "text" in env.error["message"]  # type: ignore[index]
    assert env.error["details"]["errors"][0]["loc"] == "text"  # type: ignore[index]
    extra = await demo.invoke("demo.echo", {"text": "a", "other": 1}, principal=owner)
    assert extra.code == "invalid_input"
    not_object = await demo.invoke("demo.echo", ["a"], principal=owner)  # type: ignore[arg-type]
    assert not_object.code == "invalid_input"


async def test_unknown_tool_is_not_found(demo: Registry, owner: Principal) -> None:
    env = await demo.invoke("demo.nope", {}, principal=owner)
    assert env.code == "not_found" and env.http_status == 404 and env.exit_code == 3


async def test_credentials_are_checked(demo: Registry, admin_key: str) -> None:
    assert (await demo.invoke("demo.echo", {"text": "a"})).code == "unauthenticated"
    bad = await demo.invoke("demo.echo", {"text": "a"}, credential="prvng_000000000000_nope")
    assert bad.code == "unauthenticated"
    tampered = admin_key[:-2] + ("AA" if not admin_key.endswith("AA") else "BB")
    assert (await demo.invoke("demo.echo", {"text": "a"}, credential=tampered)).code == (
        "unauthenticated"
    )
    good = await demo.invoke("demo.echo", {"text": "a"}, credential=admin_key)
    assert good.ok and good.data["caller"] == "admin"


async def test_roles_decide_and_refusals_are_audited(
    demo: Registry, keystore: KeyStore, audit_path: Path
) -> None:
    viewer_key = keystore.create("vic", ["viewer"])
    assert (await demo.invoke("demo.echo", {"text": "a"}, credential=viewer_key)).ok
    denied = await demo.invoke("demo.write", {"text": "a"}, credential=viewer_key)
    assert denied.code == "forbidden" and denied.http_status == 403
    assert "demo:write" in denied.error["message"]  # type: ignore[index]
    records = _audit(audit_path)
    assert [(r["tool"], r["principal"], r["outcome"]) for r in records] == [
        ("demo.write", "vic", "forbidden")
    ]


async def test_mutations_are_audited_without_their_arguments(
    demo: Registry, owner: Principal, audit_path: Path
) -> None:
    await demo.invoke("demo.write", {"text": "secret"}, principal=owner, trace_id="t-12345678")
    await demo.invoke("demo.echo", {"text": "read"}, principal=owner)
    (record,) = _audit(audit_path)
    assert record["tool"] == "demo.write" and record["outcome"] == "ok"
    assert record["trace_id"] == "t-12345678" and record["principal"] == "admin"
    assert "secret" not in audit_path.read_text()
    assert str(record["args_digest"]).startswith("sha256:")
    assert oct(audit_path.stat().st_mode & 0o777) == "0o600"


async def test_rate_limit_per_principal(demo: Registry, owner: Principal) -> None:
    codes = [
        (await demo.invoke("demo.echo", {"text": "a"}, principal=owner)).code for _ in range(5)
    ]
    assert codes[:3] == [None, None, None]
    assert codes[3] == "rate_limited"
    env = await demo.invoke("demo.echo", {"text": "a"}, principal=owner)
    assert env.error["details"]["retry_after_s"] > 0  # type: ignore[index]
    other = Principal(id="someone-else", roles=frozenset({"admin"}))
    assert (await demo.invoke("demo.echo", {"text": "a"}, principal=other)).ok


async def test_approval_gate_stops_gated_tools(demo: Registry, owner: Principal) -> None:
    env = await demo.invoke("demo.gated", {"text": "a"}, principal=owner)
    assert env.code == "approval_required" and env.http_status == 202 and env.exit_code == 6


async def test_handler_crash_is_internal_without_leaking(
    demo: Registry, owner: Principal, audit_path: Path
) -> None:
    env = await demo.invoke("demo.write", {"text": "boom"}, principal=owner, trace_id="trace-crash")
    assert env.code == "internal"
    assert "handler crashed" not in env.error["message"]  # type: ignore[index]
    assert "trace-crash" in env.error["message"]  # type: ignore[index]
    assert _audit(audit_path)[-1]["outcome"] == "internal"


async def test_output_is_checked_against_the_output_model(demo: Registry, owner: Principal) -> None:
    env = await demo.invoke("demo.echo", {"text": "badout"}, principal=owner)
    assert env.code == "internal"
    assert "output schema" in env.error["message"]  # type: ignore[index]


def test_error_table_covers_every_code() -> None:
    assert set(ERROR_TABLE) == set(ErrorCode)
    assert http_status("invalid_input") == 422 and exit_code("invalid_input") == 2
    assert http_status("approval_required") == 202 and exit_code("unavailable") == 8
    assert http_status("made_up") == 500 and exit_code("made_up") == 1


def test_duplicate_names_and_bad_metadata_are_refused(demo: Registry) -> None:
    with pytest.raises(ValueError, match="already registered"):
        demo.add(_spec("demo.echo"))
    with pytest.raises(ValueError, match=r"group\.action"):
        _spec("Echo")


def test_listing_is_sorted_and_self_contained(registry: Registry) -> None:
    listing = registry.listing()
    names = [t.name for t in listing.tools]
    assert names == sorted(names)
    assert "$ref" not in json.dumps(listing.model_dump())
    assert {"tools.list", "platform.health", "server.register", "config.validate"} <= set(names)


def test_settings_paths(settings: Settings) -> None:
    assert settings.admin_key_file == settings.home / "credentials" / "admin-api-key"
    assert settings.state_url == "mem://"


def test_metadata_patterns_match_the_whole_value() -> None:
    """`$` also matches before a trailing newline: every check is a full match."""
    with pytest.raises(ValueError, match=r"group\.action"):
        _spec("demo.echo\n")
    with pytest.raises(ValueError, match="permission"):
        dataclasses.replace(_spec("demo.echo"), permission="demo:read\n")
    with pytest.raises(ValueError, match="REST path"):
        RestAlias("GET", "/demo\n")


@pytest.mark.parametrize(
    "headers",
    [
        {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\n"},
        {"x-trace-id": "req-12345678\n"},
    ],
)
def test_a_trace_id_with_a_trailing_newline_is_not_taken(headers: dict[str, str]) -> None:
    trace = trace_id_from_headers(headers)
    assert trace not in {"4bf92f3577b34da6a3ce929d0e0e4736", "req-12345678"}
    assert len(trace) == 32 and "\n" not in trace
