"""Helpers for the ops-plane tests: ops to request, principals, waiting and audit reading."""

from __future__ import annotations

from typing import Any

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from daemons.bus import AUDIT_STREAM
from daemons.ops import AuditEvent, OpPlan, OpRequest, OpTarget
from registry.principal import Principal

ALICE = Principal(id="alice", roles=frozenset({"operator"}))
BOB = Principal(id="bob", roles=frozenset({"approver"}))
CAROL = Principal(id="carol", roles=frozenset({"approver"}))
VIEWER = Principal(id="vic", roles=frozenset({"viewer"}))
APPROVING_ALICE = Principal(id="alice", roles=frozenset({"operator", "approver"}))


def noop_op(
    name: str = "web-1",
    *,
    labels: dict[str, str] | None = None,
    provider: str = "local",
    op_type: str = "server.create",
    risk: str = "write",
    images: list[str] | None = None,
    tasks: int = 1,
) -> OpRequest:
    """An op whose plan is a workflow of `tasks` no-op tasks."""
    workflow = {
        "name": f"{op_type} {name}",
        "tasks": [{"id": f"t{i}", "action": "noop"} for i in range(tasks)],
    }
    return OpRequest(
        type=op_type,
        target=OpTarget(name=name, provider=provider, labels=labels or {}),
        images=images or [],
        risk=risk,  # type: ignore[arg-type]  # a str literal checked by pydantic
        params={"name": name},
        plan=OpPlan(workflow=workflow, changes=[{"create": name}]),
    )


async def audit_events(js: JetStreamContext) -> list[AuditEvent]:
    """Every event on `ops.audit.>`, oldest first."""
    info = await js.stream_info(AUDIT_STREAM)
    events = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        try:
            msg = await js.get_msg(AUDIT_STREAM, seq)
        except NotFoundError:
            continue
        assert msg.data is not None
        events.append(AuditEvent.model_validate_json(msg.data))
    return events


async def outcomes(js: JetStreamContext, op_id: str | None = None) -> list[str]:
    return [e.outcome.value for e in await audit_events(js) if op_id is None or e.op_id == op_id]


def as_dict(value: Any) -> dict[str, Any]:
    assert isinstance(value, dict)
    return value
