"""Audit events of the ops plane, published on `ops.audit.<outcome>`.

Keeper and controller both emit them: every decision (auto-approved, approval required,
approved, rejected, denied, expired) and every outcome (succeeded, failed, refused
tokens, replays, dead letters; a dispatch is a step the ledger records, not an outcome).
The event id is the message id; for an op's event it is derived from the op id and the
outcome (and a key, such as the approver), so a step retried after a crash publishes its
event again and JetStream stores it once.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

import nats.errors
from nats.js import JetStreamContext
from pydantic import Field

from daemons.bus import MSG_ID, TRACE_ID, audit_subject
from registry.errors import Unavailable
from registry.model import StrictModel
from registry.timestamps import utc_now_iso


class Outcome(StrEnum):
    AUTO_APPROVED = "auto_approved"
    APPROVAL_REQUIRED = "approval_required"
    APPROVED = "approved"
    REJECTED = "rejected"
    DENIED = "denied"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    STALE_PLAN = "stale_plan"
    """An approval refused: the state the op was planned on changed (the op stays pending)."""
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INVALID_TOKEN = "invalid_token"
    REPLAYED = "replayed"
    DEAD_LETTERED = "dead_lettered"


class AuditEvent(StrictModel):
    id: str = ""
    """Derived from the op (see the module docstring), else random."""
    at: str = Field(default_factory=utc_now_iso)
    outcome: Outcome
    component: str
    """`keeper` or `controller`."""
    op_id: str | None = None
    op_type: str | None = None
    actor: str | None = None
    """Who caused it: the requester, the approver, or the component itself."""
    trace_id: str = ""
    reason: str = ""
    details: dict[str, Any] = Field(default_factory=dict)


class AuditPublisher:
    """Publishes audit events to JetStream (each one stored before `emit` returns)."""

    def __init__(self, js: JetStreamContext, component: str) -> None:
        self._js = js
        self.component = component

    async def emit(self, outcome: Outcome, key: str = "", **fields: Any) -> AuditEvent:
        """Publish one event; `Unavailable` when JetStream did not store it."""
        event = AuditEvent(outcome=outcome, component=self.component, **fields)
        if event.op_id:
            event.id = ".".join(part for part in (event.op_id, outcome.value, key) if part)
        else:
            event.id = uuid.uuid4().hex
        headers = {MSG_ID: event.id}
        if event.trace_id:
            headers[TRACE_ID] = event.trace_id
        try:
            await self._js.publish(
                audit_subject(outcome), event.model_dump_json().encode(), headers=headers
            )
        except (nats.errors.Error, TimeoutError) as exc:
            raise Unavailable(
                f"NATS did not store the audit event ({exc}); the step is retried or "
                "refused, never taken unaudited",
                details={"outcome": outcome.value, "op_id": event.op_id},
            ) from exc
        return event
