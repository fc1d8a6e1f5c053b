"""Who is calling, and the seams that decide who they are and what they may do.

A principal has roles (and, for a scoped key, the tools it is limited to). The running
system authorizes with Cedar policies per target (`daemons.common.authorization`);
`RoleAuthorizer` is the small glob-table default of a bare `Registry`. Either replaces
the authorizer, never the pipeline step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, Protocol

from registry.errors import Forbidden

if TYPE_CHECKING:
    from registry.model import Target, ToolSpec
    from registry.resources import Resources

DEFAULT_ROLES: dict[str, tuple[str, ...]] = {
    "admin": ("*",),
    "operator": ("*:read", "*:write"),
    "viewer": ("*:read",),
}


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller."""

    id: str
    roles: frozenset[str] = field(default_factory=frozenset)
    kind: str = "api_key"
    """`api_key`, `session` (a signed session token) or `owner` (the home's owner)."""
    credential_id: str | None = None
    """The key id or session id (jti) the call came with, so it can be revoked."""
    scopes: frozenset[str] = field(default_factory=frozenset)
    """Tool-name globs a scoped key is limited to (empty: whatever the roles allow)."""

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "roles": sorted(self.roles), "kind": self.kind}

    def in_scope(self, tool: str) -> bool:
        return not self.scopes or any(fnmatchcase(tool, pattern) for pattern in self.scopes)


class Authenticator(Protocol):
    """Turns a bearer credential into a principal, or None when it is not valid."""

    async def authenticate(self, credential: str) -> Principal | None: ...


class Authorizer(Protocol):
    """Decides whether `principal` may call `spec` on what its input targets."""

    async def authorize(
        self, principal: Principal, spec: ToolSpec, args: Any, resources: Resources
    ) -> Sequence[Target] | None:
        """Raises `Forbidden` unless the call is allowed on every target it names; returns
        the targets it allowed (for the audit record), or None when it names none."""

    def may_call(self, principal: Principal, spec: ToolSpec) -> bool:
        """Whether the tool is callable at all (on some target): what a listing shows."""


class RoleAuthorizer:
    """Grants permissions from a role → glob-patterns table."""

    def __init__(self, roles: dict[str, tuple[str, ...]] | None = None) -> None:
        self._roles = roles if roles is not None else DEFAULT_ROLES
        self._cache: dict[tuple[frozenset[str], str], bool] = {}

    def allows(self, principal: Principal, permission: str) -> bool:
        key = (principal.roles, permission)
        allowed = self._cache.get(key)
        if allowed is None:
            allowed = any(
                fnmatchcase(permission, pattern)
                for role in principal.roles
                for pattern in self._roles.get(role, ())
            )
            self._cache[key] = allowed
        return allowed

    def may_call(self, principal: Principal, spec: ToolSpec) -> bool:
        return principal.in_scope(spec.name) and self.allows(principal, spec.permission)

    async def authorize(
        self, principal: Principal, spec: ToolSpec, args: Any, resources: Resources
    ) -> Sequence[Target] | None:
        permission, tool = spec.permission, spec.name
        if not self.may_call(principal, spec):
            raise Forbidden(
                f"{principal.id} may not call {tool}: it needs permission {permission!r}, "
                f"which roles {sorted(principal.roles) or '[]'} do not grant",
                details={"tool": tool, "permission": permission, "roles": sorted(principal.roles)},
            )
        return None
