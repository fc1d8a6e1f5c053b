"""The SurrealDB audit index: `audit.query` filters and pages, records survive a restart,
a full queue or a broken sink never fails a call, and only an admin reads everyone's."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from daemons.common.audit_store import GAP_TOOL, AuditFilter, AuditStore
from daemons.common.keystore import KeyStore
from daemons.common.settings import Settings
from daemons.common.state import StateStore
from registry import AuditRecord, JsonlAuditSink, Principal, Registry
from registry.audit import FanOutSink, args_digest
from registry.errors import Unavailable
from registry.timestamps import iso_utc
from servers.assembly import build_registry
from tools.audit.records import AuditEntry

T0 = 1_800_000_000.0


def _record(seconds: float, tool: str, principal: str | None, outcome: str = "ok") -> AuditRecord:
    return AuditRecord.new(
        timestamp=iso_utc(T0 + seconds),
        trace_id=f"trace-{int(seconds):04d}",
        tool=tool,
        risk="write",
        principal=principal,
        outcome=outcome,
        args_digest=args_digest({"n": seconds}),
        duration_ms=1.0,
        decision="deny" if outcome == "forbidden" else "allow",
    )


async def _page(registry: Registry, owner: Principal, **args: Any) -> dict[str, Any]:
    env = await registry.invoke("audit.query", args, principal=owner)
    assert env.ok, env.error
    assert isinstance(env.data, dict)
    return env.data


async def _fill(registry: Registry) -> list[AuditRecord]:
    """Twelve records, two per second at times 0..5 (so pages split ties)."""
    records = [
        _record(i // 2, tool, who, outcome)
        for i, (tool, who, outcome) in enumerate(
            [("server.create", "ann", "ok"), ("server.delete", "bob", "forbidden")] * 3
            + [("user.create", "ann", "ok"), ("secret.set", "bob", "invalid_input")] * 3
        )
    ]
    for record in records:
        await registry.audit_sink.record(record)
    return records


async def test_pages_come_in_one_stable_order_and_cover_every_record(
    registry: Registry, owner: Principal
) -> None:
    records = await _fill(registry)
    seen: list[str] = []
    args: dict[str, Any] = {"since": iso_utc(T0), "limit": 5}
    pages = 0
    while True:
        page = await _page(registry, owner, **args)
        seen += [r["event_id"] for r in page["records"]]
        pages += 1
        if page["next_cursor"] is None:
            break
        args["cursor"] = page["next_cursor"]
    expected = sorted(records, key=lambda r: (r.timestamp, r.event_id))
    assert seen == [r.event_id for r in expected] and pages == 3


@pytest.mark.parametrize(
    ("filters", "count"),
    [
        ({"principal": "ann"}, 6),
        ({"tool": "server.*"}, 6),
        ({"tool": "s?cret.set"}, 3),
        ({"outcome": "forbidden"}, 3),
        ({"decision": "deny"}, 3),
        ({"trace_id": "trace-0004"}, 2),
        ({"until": iso_utc(T0 + 2)}, 4),
        ({"since": iso_utc(T0 + 4), "principal": "bob"}, 2),
        ({"since": "2027-01-15T08:00:03+00:00", "until": "2027-01-15T08:00:05"}, 4),
    ],
)
async def test_filters_select_what_they_name(
    registry: Registry, owner: Principal, filters: dict[str, Any], count: int
) -> None:
    await _fill(registry)
    filters = {"since": iso_utc(T0), **filters}
    records = (await _page(registry, owner, **filters, limit=500))["records"]
    assert len(records) == count, records
    for key in ("principal", "outcome", "decision", "trace_id"):
        if key in filters:
            assert {r[key] for r in records} == {filters[key]}


async def test_a_bad_cursor_and_a_big_limit_are_invalid_input(
    registry: Registry, owner: Principal
) -> None:
    for args in ({"cursor": "WyJ4Il0"}, {"cursor": "%%%"}, {"limit": 501}):
        env = await registry.invoke("audit.query", args, principal=owner)
        assert env.error is not None and env.error["code"] == "invalid_input", args


async def test_records_survive_a_restart(
    settings: Settings, keystore: KeyStore, owner: Principal, tmp_path: Path
) -> None:
    settings = dataclasses.replace(settings, surreal_url=f"surrealkv://{tmp_path / 'db'}")
    async with build_registry(settings, keystore=keystore) as registry:
        created = await registry.invoke("user.create", {"name": "kept"}, principal=owner)
        assert created.ok, created.error
    async with build_registry(settings, keystore=keystore) as registry:
        page = await _page(registry, owner, target="user:kept")
    assert [(r["tool"], r["trace_id"]) for r in page["records"]] == [
        ("user.create", created.trace_id)
    ]


async def test_a_broken_sink_fails_no_call_and_the_others_still_get_the_record(
    registry: Registry, settings: Settings, owner: Principal
) -> None:
    (settings.logs_dir / "audit.jsonl").mkdir()  # the tail file cannot be opened now
    env = await registry.invoke("user.create", {"name": "still"}, principal=owner)
    assert env.ok, env.error
    fan_out = registry.audit_sink
    assert isinstance(fan_out, FanOutSink) and fan_out.failures == {"JsonlAuditSink": 1}
    page = await _page(registry, owner, trace_id=env.trace_id)
    assert [r["tool"] for r in page["records"]] == ["user.create"]


async def test_an_index_that_cannot_be_written_fails_no_call(
    settings: Settings, owner: Principal, tmp_path: Path
) -> None:
    """The state store is held by another process: calls still answer, the records are
    in the tail file, and the index counts what it could not write."""
    settings = dataclasses.replace(settings, surreal_url=f"surrealkv://{tmp_path / 'db'}")
    async with StateStore.open(settings.state_url):  # the other holder of the lock
        registry = build_registry(settings)
        store = registry.resources.peek(AuditStore)
        env = await registry.invoke("secret.set", {"name": "x", "value": "v"}, principal=owner)
        assert env.ok, env.error
        with pytest.raises(Unavailable):
            await store.query(AuditFilter())
        await registry.aclose()
    assert store.dropped == 1 and store.written == 0
    tail = JsonlAuditSink(settings.logs_dir / "audit.jsonl").read()
    assert [r["tool"] for r in tail] == ["secret.set"]


async def test_a_full_queue_drops_new_records_and_says_so_in_a_gap_record(
    registry: Registry,
) -> None:
    state = registry.resources
    store = AuditStore(lambda: state.get(StateStore), max_queue=2)
    for second in range(5):  # no await yields to the writer in between: the queue fills
        await store.record(_record(second, "server.create", "ann"))
    assert store.dropped == 3
    rows = await store.query(AuditFilter(since=iso_utc(T0)), limit=10)
    await store.aclose()
    assert [r["tool"] for r in rows] == ["server.create", "server.create", GAP_TOOL]
    gap = rows[2]
    assert gap["count"] == 3 and gap["outcome"] == "dropped"
    assert gap["timestamp"] == iso_utc(T0 + 2)  # where the hole begins


async def test_only_an_admin_reads_everyone_else_only_their_own(
    registry: Registry, keystore: KeyStore, owner: Principal
) -> None:
    viewer = keystore.create("vic", ["viewer"])
    nobody = keystore.create("nia", [])
    await registry.invoke("user.create", {"name": "x"}, credential=viewer)  # a denial of vic
    everyone = await registry.invoke("audit.query", {}, credential=viewer)
    assert everyone.error is not None and everyone.error["code"] == "forbidden"
    other = await registry.invoke("audit.query", {"principal": "admin"}, credential=viewer)
    assert other.error is not None and other.error["code"] == "forbidden"
    own = await registry.invoke("audit.query", {"principal": "vic"}, credential=viewer)
    assert own.ok and isinstance(own.data, dict)
    assert {r["principal"] for r in own.data["records"]} == {"vic"}
    assert {r["tool"] for r in own.data["records"]} == {"user.create", "audit.query"}
    roleless = await registry.invoke("audit.query", {"principal": "nia"}, credential=nobody)
    assert roleless.ok, roleless.error
    admin = await _page(registry, owner, principal="vic")
    assert len(admin["records"]) == len(own.data["records"])


def test_a_queried_entry_has_every_field_a_record_has() -> None:
    """`audit.query`'s entry model restates `AuditRecord`'s fields: they must not drift."""
    record_fields = [f.name for f in dataclasses.fields(AuditRecord)]
    assert list(AuditEntry.model_fields) == record_fields
