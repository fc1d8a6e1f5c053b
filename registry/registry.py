"""The `Registry`: every operation by name, and the one way to call one."""

from __future__ import annotations

import builtins
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

from registry.approval import ApprovalGate, NoApprovals
from registry.audit import AuditSink, close_sink
from registry.context import CallTier, ProgressSink
from registry.envelope import Envelope
from registry.errors import Internal, InvalidInput, NotFound, PlatformError, Unauthenticated
from registry.listing import ToolListing, tool_info
from registry.model import ToolSpec
from registry.pipeline import (
    Approval,
    Audit,
    Authorize,
    IdentifyPrincipal,
    Invocation,
    Middleware,
    Observe,
    RateLimit,
    ValidateInput,
    compose,
    handler_terminal,
)
from registry.principal import Authenticator, Authorizer, Principal, RoleAuthorizer
from registry.ratelimit import RateLimiter, Unlimited
from registry.resources import Resources
from registry.stats import CallStats
from registry.trace import new_trace_id

log = logging.getLogger("prvng.registry")


def unknown_tool(name: str) -> NotFound:
    """The error for a tool name no registry holds (a tier that finds none says the same)."""
    return NotFound(
        f"unknown tool {name!r}; `prvng tools list` shows every tool", details={"tool": name}
    )


class Registry:
    """Holds the tool specs and runs every call through the pipeline."""

    def __init__(
        self,
        *,
        authenticator: Authenticator,
        audit_sink: AuditSink,
        authorizer: Authorizer | None = None,
        rate_limiter: RateLimiter | None = None,
        approval_gate: ApprovalGate | None = None,
        resources: Resources | None = None,
    ) -> None:
        self._tools: dict[str, ToolSpec] = {}
        self._listing: ToolListing | None = None
        self._listings: dict[Principal, ToolListing] = {}
        self.authenticator = authenticator
        self.authorizer = authorizer or RoleAuthorizer()
        self.audit_sink = audit_sink
        self.resources = resources or Resources()
        self.stats = CallStats()
        self.middlewares: list[Middleware] = [
            Observe(self.stats),
            Audit(audit_sink),
            ValidateInput(),
            IdentifyPrincipal(authenticator),
            Authorize(self.authorizer, self.resources),
            RateLimit(rate_limiter or Unlimited()),
            Approval(approval_gate or NoApprovals()),
        ]
        self._chain = compose(self.middlewares, handler_terminal(self.resources, self.listing))

    # -- the catalogue ---------------------------------------------------------------

    def add(self, spec: ToolSpec) -> None:
        if spec.name in self._tools:
            raise ValueError(f"tool {spec.name!r} is already registered")
        self._tools[spec.name] = spec
        self._listing = None
        self._listings.clear()

    def extend(self, specs: Iterable[ToolSpec]) -> None:
        for spec in specs:
            self.add(spec)

    def get(self, name: str) -> ToolSpec:
        try:
            return self._tools[name]
        except KeyError:
            raise unknown_tool(name) from None

    def list(self) -> list[ToolSpec]:
        return sorted(self._tools.values(), key=lambda spec: spec.name)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __len__(self) -> int:
        return len(self._tools)

    def listing(self, principal: Principal | None = None) -> ToolListing:
        """Every operation, or only those `principal` may call (computed once per caller)."""
        if self._listing is None:
            self._listing = ToolListing(tools=[tool_info(spec) for spec in self.list()])
        if principal is None:
            return self._listing
        mine = self._listings.get(principal)
        if mine is None:
            allowed = {s.name for s in self.list() if self.authorizer.may_call(principal, s)}
            mine = ToolListing(tools=[t for t in self._listing.tools if t.name in allowed])
            if len(self._listings) > 1024:
                self._listings.clear()
            self._listings[principal] = mine
        return mine

    def visible(self, principal: Principal) -> builtins.list[ToolSpec]:
        """The specs `principal` may call (MCP `tools/list`)."""
        return [spec for spec in self.list() if self.authorizer.may_call(principal, spec)]

    # -- calling ---------------------------------------------------------------------

    async def authenticate(self, credential: str | None) -> Principal:
        """The principal behind a bearer credential, or `Unauthenticated`."""
        if not credential:
            raise Unauthenticated("no credentials: send 'Authorization: Bearer <api key>'")
        principal = await self.authenticator.authenticate(credential)
        if principal is None:
            raise Unauthenticated("the API key or session token is not valid")
        return principal

    async def invoke(
        self,
        name: str,
        args: dict[str, Any] | None = None,
        *,
        principal: Principal | None = None,
        credential: str | None = None,
        trace_id: str | None = None,
        progress: ProgressSink | None = None,
        tier: CallTier | None = None,
    ) -> Envelope:
        """Run one call through the pipeline; never raises a `PlatformError`."""
        trace_id = trace_id or new_trace_id()
        try:
            spec = self.get(name)
            if args is None:
                args = {}
            elif not isinstance(args, dict):
                raise InvalidInput(f"{name} takes a JSON object, not {type(args).__name__}")
            call = Invocation(spec, args, trace_id, principal, credential, progress, tier=tier)
            data = await self._chain(call)
        except PlatformError as exc:
            return Envelope.failure(exc, trace_id)
        except Exception:
            log.exception("tool %s failed (trace %s)", name, trace_id)
            return Envelope.failure(
                Internal(f"{name} failed unexpectedly; the server log has trace {trace_id}"),
                trace_id,
            )
        return Envelope.success(data, trace_id)

    async def open_stream(
        self,
        name: str,
        args: dict[str, Any] | None = None,
        *,
        principal: Principal | None = None,
        credential: str | None = None,
        trace_id: str | None = None,
        tier: CallTier | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Open a streaming tool through the whole pipeline; its items as JSON data.

        Refusals raise the `PlatformError` (the tier answers it as an envelope before any
        item); the stream ends when the tool's stream does or the caller stops reading."""
        spec = self.get(name)
        if args is None:
            args = {}
        elif not isinstance(args, dict):
            raise InvalidInput(f"{name} takes a JSON object, not {type(args).__name__}")
        call = Invocation(spec, args, trace_id or new_trace_id(), principal, credential, tier=tier)
        call.streaming = True
        items: AsyncIterator[dict[str, Any]] = await self._chain(call)
        return items

    async def aclose(self) -> None:
        """Flush the audit first: its sinks may still need the resources (the state store)."""
        try:
            await close_sink(self.audit_sink)
        finally:
            await self.resources.aclose()

    async def __aenter__(self) -> Registry:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
