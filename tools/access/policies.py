"""`policy.validate`: check Cedar policy text (or the configured policies) against the
schema, with each problem named, before it is put in `PRVNG_CONFIG/policies/`."""

from __future__ import annotations

from pydantic import Field

from daemons.common.authorization import CedarAuthorizer, PolicyProblem, check_policies
from registry import ContractCase, RestAlias, StrictModel, ToolContext, ToolSpec


class ValidateInput(StrictModel):
    policies: str | None = Field(
        default=None, max_length=200_000, description="Cedar text (default: the policy files)"
    )


class Problem(StrictModel):
    file: str
    message: str


class Validation(StrictModel):
    valid: bool
    problems: list[Problem]


async def validate(args: ValidateInput, ctx: ToolContext) -> Validation:
    authorizer = await ctx.resource(CedarAuthorizer)
    if args.policies is None:
        found: list[PolicyProblem] = authorizer.check_dir()
    else:
        found = check_policies(args.policies, authorizer.schema_text, "(input)")
    problems = [Problem(file=p.file, message=p.message) for p in found]
    return Validation(valid=not problems, problems=problems)


_GOOD = 'permit (principal in Role::"viewer", action in Action::"read", resource);'

TOOLS = [
    ToolSpec(
        name="policy.validate",
        summary="Validate Cedar policies against the platform's schema",
        input_model=ValidateInput,
        output_model=Validation,
        handler=validate,
        rest=RestAlias("POST", "/v1/policies/validate"),
        permission="policy:read",
        idempotent=True,
        tags=("identity",),
        cases=(
            ContractCase("configured"),
            ContractCase("good", {"policies": _GOOD}),
            ContractCase(
                "unknown action",
                {"policies": 'permit (principal, action == Action::"nope", resource);'},
            ),
        ),
    ),
]

__all__ = ["TOOLS"]
