"""Who is calling, and the simple role model that decides what they may do.

A principal has roles; a tool names the permission it needs (`domain:read|write|admin`).
`RoleAuthorizer` grants a permission when any role's patterns match it. The Cedar-based
RBAC replaces the authorizer, never the pipeline step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Protocol

from registry.errors import Forbidden

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

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "roles": sorted(self.roles), "kind": self.kind}


class Authenticator(Protocol):
    """Turns a bearer credential into a principal, or None when it is not valid."""

    def authenticate(self, credential: str) -> Principal | None: ...


class Authorizer(Protocol):
    """Raises `Forbidden` unless `principal` may use `permission` on `tool`."""

    def authorize(self, principal: Principal, permission: str, tool: str) -> None: ...


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

    def authorize(self, principal: Principal, permission: str, tool: str) -> None:
        if not self.allows(principal, permission):
            raise Forbidden(
                f"{principal.id} may not call {tool}: it needs permission {permission!r}, "
                f"which roles {sorted(principal.roles) or '[]'} do not grant",
                details={"tool": tool, "permission": permission, "roles": sorted(principal.roles)},
            )
