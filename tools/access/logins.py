"""`session.login|refresh|logout`: short-lived signed session tokens.

Log in with an API key (as the bearer) to get a token to use instead of it; refresh
swaps a token for a new one (the old one is revoked); logout revokes the token in use.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import Field

from daemons.common.identity import IdentityStore
from daemons.common.sessions import DEFAULT_TTL_S, SessionSigner
from registry import ContractCase, RateClass, RestAlias, Risk, StrictModel, ToolContext, ToolSpec
from registry.errors import InvalidInput


class LoginInput(StrictModel):
    ttl_s: int = Field(
        default=DEFAULT_TTL_S, gt=0, le=DEFAULT_TTL_S, description="Lifetime, seconds"
    )


class NoInput(StrictModel):
    pass


class Session(StrictModel):
    token: str = Field(description="Send as 'Authorization: Bearer <token>'")
    session_id: str
    expires_at: str


class LoggedOut(StrictModel):
    session_id: str
    revoked: bool


async def _issue(ctx: ToolContext, ttl_s: int) -> Session:
    signer = await ctx.resource(SessionSigner)
    p = ctx.principal
    token, claims = signer.issue(p.id, sorted(p.roles), sorted(p.scopes), ttl_s)
    expires = datetime.fromtimestamp(claims["exp"], UTC).isoformat()
    await (await ctx.resource(IdentityStore)).record_session(claims["jti"], p.id, expires)
    return Session(token=token, session_id=claims["jti"], expires_at=expires)


def _session_id(ctx: ToolContext) -> str:
    if ctx.principal.kind != "session" or ctx.principal.credential_id is None:
        raise InvalidInput(
            "this call needs a session token as its credential (`session.login` gives one)"
        )
    return ctx.principal.credential_id


async def login(args: LoginInput, ctx: ToolContext) -> Session:
    if ctx.principal.kind == "session":
        raise InvalidInput("log in with an API key; refresh a session with `session.refresh`")
    return await _issue(ctx, args.ttl_s)


async def refresh(args: LoginInput, ctx: ToolContext) -> Session:
    old = _session_id(ctx)
    session = await _issue(ctx, args.ttl_s)
    await (await ctx.resource(IdentityStore)).revoke_session(old)
    return session


async def logout(args: NoInput, ctx: ToolContext) -> LoggedOut:
    session_id = _session_id(ctx)
    await (await ctx.resource(IdentityStore)).revoke_session(session_id)
    return LoggedOut(session_id=session_id, revoked=True)


_VOLATILE = ("token", "session_id", "expires_at")

TOOLS = [
    ToolSpec(
        name="session.login",
        rate_class=RateClass.AUTH,
        summary="Trade the API key you call with for a short-lived session token",
        input_model=LoginInput,
        output_model=Session,
        handler=login,
        rest=RestAlias("POST", "/v1/sessions/login"),
        permission="self:write",
        risk=Risk.WRITE,
        tags=("identity",),
        volatile_paths=_VOLATILE,
        cases=(
            ContractCase("login", {"ttl_s": 60}),
            ContractCase("too long", {"ttl_s": 86400}, "invalid_input"),
        ),
    ),
    ToolSpec(
        name="session.refresh",
        rate_class=RateClass.AUTH,
        summary="Swap the session token you call with for a new one (the old one ends)",
        input_model=LoginInput,
        output_model=Session,
        handler=refresh,
        rest=RestAlias("POST", "/v1/sessions/refresh"),
        permission="self:write",
        risk=Risk.WRITE,
        tags=("identity",),
        volatile_paths=_VOLATILE,
        cases=(ContractCase("not a session", {}, "invalid_input"),),
    ),
    ToolSpec(
        name="session.logout",
        rate_class=RateClass.AUTH,
        summary="End the session whose token you call with",
        input_model=NoInput,
        output_model=LoggedOut,
        handler=logout,
        rest=RestAlias("POST", "/v1/sessions/logout"),
        permission="self:write",
        risk=Risk.WRITE,
        idempotent=True,
        tags=("identity",),
        cases=(ContractCase("not a session", {}, "invalid_input"),),
    ),
]

__all__ = ["TOOLS"]
