"""`audit.verify`: is the signed audit repository the exact, complete record of the stream?

The same check as the offline `prvng audit verify`, through the platform (admin only). A
verification that finds problems is a successful call answering `ok: false` with each
problem named (kind, commit, detail): the call did what was asked; the record did not
verify. An error envelope means the check could not run (git or NATS unavailable).
"""

from __future__ import annotations

from pydantic import Field

from daemons.audit_mirror.daemon import AuditVerifier
from registry import ContractCase, RestAlias, StrictModel, ToolContext, ToolSpec


class VerifyInput(StrictModel):
    stream: bool = Field(
        default=True,
        description="Also check every audit stream event has one commit (when NATS is set)",
    )


class VerifyProblem(StrictModel):
    kind: str
    commit: str | None
    detail: str


class VerifyResult(StrictModel):
    ok: bool
    head: str | None
    commits: int
    events: int
    stream_checked: bool
    problems: list[VerifyProblem]


async def verify_audit(args: VerifyInput, ctx: ToolContext) -> VerifyResult:
    verifier = await ctx.resource(AuditVerifier)
    report, stream_checked = await verifier.verify(stream=args.stream)
    return VerifyResult(
        ok=report.ok,
        head=report.head,
        commits=report.commits,
        events=len(report.events),
        stream_checked=stream_checked,
        problems=[
            VerifyProblem(kind=p.kind, commit=p.commit, detail=p.detail) for p in report.problems
        ],
    )


TOOLS = [
    ToolSpec(
        name="audit.verify",
        summary="Verify the signed audit repository: signatures, linear history, content, stream",
        description="A record that fails answers ok=false with each problem named.",
        input_model=VerifyInput,
        output_model=VerifyResult,
        handler=verify_audit,
        permission="audit:admin",
        idempotent=True,
        rest=RestAlias("GET", "/v1/audit/verify"),
        tags=("audit",),
        cases=(
            ContractCase("an empty record verifies", {}),
            ContractCase("repository only", {"stream": False}),
            ContractCase("unknown field", {"deep": True}, "invalid_input"),
        ),
    ),
]

__all__ = ["TOOLS"]
