"""`audit.query`: read the invocation audit (SurrealDB table `audit`) with filters, by page.

Pages come in one stable order (timestamp, then event id) and `next_cursor` resumes after
the last record of a page, so records written meanwhile never shift a page. An admin reads
every record; anyone else only their own: the call's target is `User::"<principal>"` for
a `principal` filter, else `User::"*"` (everyone's), and the `domain:audit` policy allows
a non-admin only the target that is themselves. Records carry an args digest, never args.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import Field

from daemons.common.audit_store import AuditFilter, AuditStore
from registry import Call, ContractCase, RestAlias, StrictModel, Target, ToolContext, ToolSpec
from registry.errors import InvalidInput
from registry.resources import Resources
from registry.timestamps import iso_utc

MAX_LIMIT = 500
EVERYONE = "*"
"""The target id of a query over every principal's records."""


class Decision(StrEnum):
    """`allow`: let through; `deny`: refused by a gate."""

    ALLOW = "allow"
    DENY = "deny"


class QueryInput(StrictModel):
    since: datetime | None = Field(default=None, description="From this time on (ISO 8601)")
    until: datetime | None = Field(default=None, description="Before this time (ISO 8601)")
    principal: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.@:-]{1,128}$",
        description="Whose calls (default: everyone's, which only an admin may read)",
    )
    tool: str | None = Field(
        default=None, pattern=r"^[a-z0-9_.*?]{1,128}$", description="Tool name or glob"
    )
    outcome: str | None = Field(
        default=None, pattern=r"^[a-z_]{1,32}$", description="`ok` or an error code"
    )
    decision: Decision | None = None
    trace_id: str | None = Field(
        default=None, pattern=r"^[0-9A-Za-z_\-]{8,64}$", description="One call's trace id"
    )
    target: str | None = Field(
        default=None, max_length=256, description="What the call acted on (`server:web-1`)"
    )
    event_id: str | None = Field(
        default=None, pattern=r"^[0-9A-Za-z_\-]{1,64}$", description="One record's event id"
    )
    cursor: str | None = Field(
        default=None, max_length=256, description="`next_cursor` of the previous page"
    )
    limit: int = Field(default=50, ge=1, le=MAX_LIMIT, description="Records per page")


class AuditEntry(StrictModel):
    event_id: str
    timestamp: str
    trace_id: str
    tool: str
    risk: str
    principal: str | None
    outcome: str
    args_digest: str
    duration_ms: float
    source: str | None = None
    count: int | None = None
    truncated_from: int | None = None
    tier: str | None = None
    target: str | None = None
    decision: str | None = None


class AuditPage(StrictModel):
    records: list[AuditEntry]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: done")


def _time(value: datetime | None) -> str | None:
    if value is None:
        return None
    return iso_utc((value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp())


def tool_regex(glob: str) -> str:
    """A tool glob (`*`, `?`) as an anchored regex; names hold only `[a-z0-9_.]`."""
    return "^" + glob.replace(".", r"\.").replace("*", ".*").replace("?", ".") + "$"


def encode_cursor(record: dict[str, Any]) -> str:
    raw = json.dumps([record["timestamp"], record["event_id"]], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        timestamp, event_id = json.loads(raw)
        if isinstance(timestamp, str) and isinstance(event_id, str):
            return timestamp, event_id
    except (binascii.Error, ValueError, TypeError):
        pass
    raise InvalidInput(
        "cursor is not a `next_cursor` this tool returned; leave it out to start over",
        details={"field": "cursor"},
    )


async def _whose(args: QueryInput, resources: Resources) -> list[Target]:
    return [Target("user", args.principal or EVERYONE)]


async def query_audit(args: QueryInput, ctx: ToolContext) -> AuditPage:
    after = decode_cursor(args.cursor) if args.cursor else None
    where = AuditFilter(
        since=_time(args.since),
        until=_time(args.until),
        principal=args.principal,
        tool_regex=tool_regex(args.tool) if args.tool else None,
        outcome=args.outcome,
        trace_id=args.trace_id,
        decision=args.decision.value if args.decision else None,
        target=args.target,
        event_id=args.event_id,
    )
    store = await ctx.resource(AuditStore)
    rows = await store.query(where, after=after, limit=args.limit + 1)
    page, more = rows[: args.limit], len(rows) > args.limit
    return AuditPage(
        records=[AuditEntry(**row) for row in page],
        next_cursor=encode_cursor(page[-1]) if more else None,
    )


_PROBE = Call("user.create", {"name": "audit-probe", "roles": ["viewer"]})
_VOLATILE = ("records.*.event_id", "records.*.duration_ms", "records.*.tier", "next_cursor")

TOOLS = [
    ToolSpec(
        name="audit.query",
        summary="Read the invocation audit: every mutation and denial, filtered, by page",
        description=(
            "Records come oldest first (timestamp, then event id); pass `next_cursor` back "
            "as `cursor` for the next page. An admin reads every record; anyone else must "
            "name themselves as `principal`. Arguments appear only as a digest."
        ),
        input_model=QueryInput,
        output_model=AuditPage,
        handler=query_audit,
        permission="audit:read",
        idempotent=True,
        rest=RestAlias("GET", "/v1/audit"),
        targets=_whose,
        tags=("audit",),
        volatile_paths=_VOLATILE,
        cases=(
            ContractCase("a mutation", {"target": "user:audit-probe"}, setup=(_PROBE,)),
            ContractCase("nothing matches", {"tool": "no.such.*", "decision": "deny"}),
            ContractCase("no such event", {"event_id": "no-such-event"}),
            ContractCase("bad cursor", {"cursor": "not-a-cursor"}, "invalid_input"),
            ContractCase("limit too big", {"limit": MAX_LIMIT + 1}, "invalid_input"),
        ),
    ),
]

__all__ = ["TOOLS"]
