"""Authorization with Cedar: policies in `PRVNG_CONFIG/policies/*.cedar`, per target.

principal = `User::"<id>"` in its `Role::"<role>"`s; action = `Action::"<tool>"`, in the
groups `Action::"read|write|admin"` (its permission's level) and `Action::"domain:<d>"`;
resource = each target the tool's `targets` finder names (`Server`, `Workflow`,
`Taskserv`, `User`), or `Tool::"<tool>"` for a tool without one. A resource's `owner` is
the id of the user it belongs to, and a user owns itself (so a policy says "the caller's
own" as `resource.owner == principal.owner`). Every target must be
allowed (default deny). Policies are validated against the schema when loaded, so a
broken policy stops the start with its error instead of denying everything quietly.
Decisions are cached by (principal, action, target): policies are fixed for a run.
A permit annotated `@approval` allows a call only as a request: `approval_required` says
when no other permit allowed it, and the ops gate then has the keeper hold the op for a
second user.
A config without a `policies/` folder uses the platform's defaults (`config/policies`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cedarpy

from daemons.common.settings import PROJECT_ROOT
from registry.errors import Forbidden, InvalidInput
from registry.model import Target, ToolSpec
from registry.principal import Principal
from registry.resources import Resources

SCHEMA_FILE = "schema.cedarschema"
DEFAULT_POLICY_DIR = PROJECT_ROOT / "config" / "policies"
_KINDS = {"server": "Server", "workflow": "Workflow", "taskserv": "Taskserv", "user": "User"}
_MAX_CACHE = 16384
APPROVAL_ANNOTATION = "approval"
"""Marks a permit that allows a call only as a request needing a second user."""


@dataclass(frozen=True, slots=True)
class PolicyProblem:
    file: str
    message: str


def _actions_schema(specs: Iterable[ToolSpec]) -> str:
    """The schema's action declarations, one per tool, with their groups."""
    groups: set[str] = {"read", "write", "admin"}
    lines = []
    for spec in specs:
        domain, level = spec.permission.split(":")
        groups.add(f"domain:{domain}")
        lines.append(
            f'action "{spec.name}" in ["{level}", "domain:{domain}"] appliesTo '
            "{ principal: [User], resource: [User, Tool, Server, Workflow, Taskserv] };"
        )
    return "\n".join([*(f'action "{group}";' for group in sorted(groups)), *lines])


def load_policies(policy_dir: Path, actions: str) -> tuple[str, str]:
    """`(policies, schema)` from `policy_dir`, or `InvalidInput` naming every problem.

    `actions` is the schema's action part, made from the registry's tools."""
    schema_path = policy_dir / SCHEMA_FILE
    if not schema_path.is_file():
        raise InvalidInput(f"no Cedar schema at {schema_path}", details={"dir": str(policy_dir)})
    schema = schema_path.read_text() + "\n" + actions
    files = sorted(policy_dir.glob("*.cedar"))
    if not files:
        raise InvalidInput(f"no *.cedar policies in {policy_dir}", details={"dir": str(policy_dir)})
    problems: list[PolicyProblem] = []
    texts = []
    for path in files:
        text = path.read_text()
        problems += check_policies(text, schema, path.name)
        texts.append(text)
    if problems:
        raise InvalidInput(
            f"{len(problems)} problem(s) in the Cedar policies in {policy_dir}: "
            + "; ".join(f"{p.file}: {p.message}" for p in problems[:5]),
            details={"problems": [{"file": p.file, "message": p.message} for p in problems]},
        )
    return "\n".join(texts), schema


def check_policies(text: str, schema: str, label: str) -> list[PolicyProblem]:
    """What is wrong with policy `text` against `schema` (empty: nothing)."""
    try:
        result = cedarpy.validate_policies(text, schema)
    except Exception as exc:  # cedarpy raises on text it cannot parse at all
        return [PolicyProblem(label, " ".join(str(exc).split()))]
    if result.validation_passed:
        return []
    return [PolicyProblem(label, " ".join(str(err).split())) for err in result.errors]


def _annotated(policies: str, annotation: str) -> frozenset[str]:
    """The ids (as `is_authorized` names them: policy0, policy1, ...) of the policies
    carrying `annotation`."""
    static = json.loads(cedarpy.policies_to_json_str(policies))["staticPolicies"]
    return frozenset(pid for pid, p in static.items() if annotation in p.get("annotations", {}))


def _resource(target: Target) -> tuple[dict[str, str], dict[str, Any]]:
    uid = {"type": _KINDS.get(target.kind, "Tool"), "id": target.id}
    extra = dict(target.attrs)
    attrs = {
        "labels": sorted(f"{k}={v}" for k, v in target.labels),
        "owner": target.owner or (target.id if target.kind == "user" else ""),
        "environment": target.environment or "",
        "actions": sorted(extra.get("actions", ())),
    }
    return uid, {"uid": uid, "attrs": attrs, "parents": []}


class CedarAuthorizer:
    """`Authorizer` deciding every call with the loaded Cedar policies."""

    def __init__(self, policy_dir: Path, specs: Iterable[ToolSpec]) -> None:
        if not policy_dir.is_dir():
            policy_dir = DEFAULT_POLICY_DIR
        self.policy_dir = policy_dir
        self.actions = _actions_schema(specs)
        policies, schema = load_policies(policy_dir, self.actions)
        self.policies = cedarpy.PolicySet.from_str(policies)
        self._approval_ids = _annotated(policies, APPROVAL_ANNOTATION)
        self.schema_text = schema
        self._cache: dict[tuple[Principal, str, Target], bool] = {}
        self._held: dict[tuple[Principal, str, Target], bool] = {}

    def check_dir(self) -> list[PolicyProblem]:
        """The problems of the policy files as they are now (empty: all valid)."""
        try:
            load_policies(self.policy_dir, self.actions)
        except InvalidInput as exc:
            found = exc.details.get("problems") or [{"file": "", "message": exc.message}]
            return [PolicyProblem(p["file"], p["message"]) for p in found]
        return []

    def allows(self, principal: Principal, spec: ToolSpec, target: Target) -> bool:
        key = (principal, spec.name, target)
        allowed = self._cache.get(key)
        if allowed is None:
            allowed = principal.in_scope(spec.name) and self._decide(principal, spec, target)
            if len(self._cache) >= _MAX_CACHE:
                self._cache.clear()
            self._cache[key] = allowed
        return allowed

    def approval_required(
        self, principal: Principal, action: str, permission: str, targets: Iterable[Target]
    ) -> bool:
        """Whether calling `action` (with `permission`) on `targets` is allowed only as a
        request: on some target, every permit that allows it is marked `@approval`."""
        for target in targets:
            key = (principal, action, target)
            held = self._held.get(key)
            if held is None:
                result = self._result(principal, action, permission, target)
                reasons = set(result.diagnostics.reasons)
                held = result.decision == cedarpy.Decision.Allow and reasons <= self._approval_ids
                if len(self._held) >= _MAX_CACHE:
                    self._held.clear()
                self._held[key] = held
            if held:
                return True
        return False

    def _decide(self, principal: Principal, spec: ToolSpec, target: Target) -> bool:
        result = self._result(principal, spec.name, spec.permission, target)
        return result.decision == cedarpy.Decision.Allow

    def _result(
        self, principal: Principal, name: str, permission: str, target: Target
    ) -> cedarpy.AuthzResult:
        user = {"type": "User", "id": principal.id}
        roles = [{"type": "Role", "id": role} for role in sorted(principal.roles)]
        resource_uid, resource = _resource(target)
        blank = {"labels": [], "owner": "", "environment": "", "actions": []}
        domain, level = permission.split(":")
        # The action's groups come with the request, so a tool added after start-up
        # (not in the schema) is still decided by its permission's groups.
        action = {"type": "Action", "id": name}
        groups = [{"type": "Action", "id": level}, {"type": "Action", "id": f"domain:{domain}"}]
        entities = [
            *({"uid": role, "attrs": {}, "parents": []} for role in roles),
            *({"uid": group, "attrs": {}, "parents": []} for group in groups),
            {"uid": action, "attrs": {}, "parents": groups},
            resource,
        ]
        if resource_uid != user:
            # A user owns itself, so `resource.owner == principal.owner` reads "theirs".
            entities.append(
                {"uid": user, "attrs": {**blank, "owner": principal.id}, "parents": roles}
            )
        else:
            resource["parents"] = roles
        request = {"principal": user, "action": action, "resource": resource_uid, "context": {}}
        return cedarpy.is_authorized(request, self.policies, json.dumps(entities))

    def may_call(self, principal: Principal, spec: ToolSpec) -> bool:
        return self.allows(principal, spec, Target("tool", spec.name))

    async def authorize(
        self, principal: Principal, spec: ToolSpec, args: Any, resources: Resources
    ) -> list[Target]:
        targets = [Target("tool", spec.name)]
        if spec.targets is not None:
            targets = await spec.targets(args, resources) or targets
        for target in targets:
            if not self.allows(principal, spec, target):
                what = "" if target.kind == "tool" else f" on {target.kind} {target.id!r}"
                raise Forbidden(
                    f"{principal.id} may not call {spec.name}{what}: no policy allows it "
                    f"({spec.permission!r}) for roles {sorted(principal.roles) or '[]'}",
                    details={
                        "tool": spec.name,
                        "permission": spec.permission,
                        "target": {"kind": target.kind, "id": target.id},
                        "roles": sorted(principal.roles),
                    },
                )
        return targets
