"""The best-practice rule catalog `settings.recommend` checks: data (`RULES`) plus one
function per rule.

A rule reads `Facts` (the workspace's evaluated value, the taskserv catalog's definitions,
the keeper policy) and yields `(where, message)` for each place it fires. Ids are stable:
scripts and suppressions may rely on them; a new rule takes a new id.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from daemons.keeper.policy import Policy
from daemons.ops.model import OpPlan, OpRequest, OpTarget

Severity = Literal["info", "warning", "error", "critical"]
SEVERITY_ORDER: dict[str, int] = {"info": 0, "warning": 1, "error": 2, "critical": 3}
Hit = tuple[str, str]
"""Where a rule fired (`servers[0].taskservs[1]`) and what it saw."""


@dataclass(frozen=True, slots=True)
class Facts:
    workspace: dict[str, Any]
    catalog: dict[str, dict[str, Any] | None]
    """Each taskserv the workspace names → its catalog definition (None: not in the catalog)."""
    policy: Policy | None
    """The keeper policy of the workspace (None: no `keeper_policy.ncl`, or it is broken)."""
    servers: list[dict[str, Any]] = field(init=False)

    def __post_init__(self) -> None:
        servers = self.workspace.get("servers")
        listed = servers if isinstance(servers, list) else []
        object.__setattr__(self, "servers", [s for s in listed if isinstance(s, dict)])

    def taskservs(self) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
        """(where, server, taskserv entry) for every taskserv of every server."""
        for i, server in enumerate(self.servers):
            for j, entry in enumerate(server.get("taskservs") or []):
                if isinstance(entry, dict):
                    yield f"servers[{i}].taskservs[{j}]", server, entry


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    severity: Severity
    title: str
    fix: str
    check: Callable[[Facts], Iterator[Hit]]


_ALL_INTERFACES = frozenset({"0.0.0.0", "::", "[::]", "*", "0:0:0:0:0:0:0:0"})
_BIND_KEYS = frozenset({"bind", "host", "listen", "address", "bind_address"})
_EXACT_VERSION = re.compile(r"\d+\.\d+\.\d+")
_SECRET_KEY = re.compile(
    r"pass(word|wd)?|secret|token|api[_-]?key|private[_-]?key|credential", re.I
)
_SECRET_VALUE = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----|\bAKIA[0-9A-Z]{16}\b|\bghp_\w{20,}")
PROD_ENVS = frozenset({"prod", "production"})


def _port(entry: dict[str, Any], definition: dict[str, Any] | None) -> int | None:
    """The port a taskserv listens on: its own setting, else its catalog default."""
    port = entry.get("port")
    if port is None and definition is not None:
        port = (definition.get("settings") or {}).get("port")
    return port if isinstance(port, int) and not isinstance(port, bool) else None


def bind_all(facts: Facts) -> Iterator[Hit]:
    for where, _server, entry in facts.taskservs():
        for key in sorted(_BIND_KEYS & set(entry)):
            if str(entry[key]).strip() in _ALL_INTERFACES:
                yield (
                    f"{where}.{key}",
                    f"{entry.get('name')} listens on {entry[key]} (every interface)",
                )


def port_conflict(facts: Facts) -> Iterator[Hit]:
    seen: dict[int, str] = {}
    for where, _server, entry in facts.taskservs():
        port = _port(entry, facts.catalog.get(str(entry.get("name"))))
        if port is None:
            continue
        if port in seen:
            yield (
                where,
                f"port {port} is taken by {seen[port]} already (local servers share 127.0.0.1)",
            )
        else:
            seen[port] = where


def privileged_port(facts: Facts) -> Iterator[Hit]:
    for where, _server, entry in facts.taskservs():
        port = _port(entry, facts.catalog.get(str(entry.get("name"))))
        if port is not None and port < 1024:
            yield where, f"{entry.get('name')} uses port {port}, which only root may open"


def unknown_taskserv(facts: Facts) -> Iterator[Hit]:
    for where, _server, entry in facts.taskservs():
        if facts.catalog.get(str(entry.get("name"))) is None:
            yield where, f"no taskserv {entry.get('name')!r} in the catalog"


def missing_health(facts: Facts) -> Iterator[Hit]:
    for where, _server, entry in facts.taskservs():
        definition = facts.catalog.get(str(entry.get("name")))
        if definition is not None and not isinstance(definition.get("health"), dict):
            yield where, f"taskserv {entry.get('name')!r} defines no health check"


def unpinned_version(facts: Facts) -> Iterator[Hit]:
    for where, _server, entry in facts.taskservs():
        definition = facts.catalog.get(str(entry.get("name")))
        for origin, version in (
            ("workspace", entry.get("version")),
            ("catalog", (definition or {}).get("version", "")),
        ):
            if version is None or (origin == "catalog" and definition is None):
                continue
            if not _EXACT_VERSION.fullmatch(str(version)):
                yield (
                    where,
                    f"{entry.get('name')}: {origin} version {version!r} is not an exact X.Y.Z",
                )


def prod_without_approval(facts: Facts) -> Iterator[Hit]:
    for i, server in enumerate(facts.servers):
        labels = {str(k): str(v) for k, v in (server.get("labels") or {}).items()}
        if labels.get("env") not in PROD_ENVS:
            continue
        if facts.policy is None:
            yield f"servers[{i}]", f"{server.get('name')} is prod and no keeper policy is readable"
            continue
        op = OpRequest(
            type="server.create",
            target=OpTarget(
                name=str(server.get("name")),
                provider=str(server.get("provider") or "local"),
                labels=labels,
            ),
            risk="write",
            plan=OpPlan(workflow={}),
        )
        rule = facts.policy.decide(op)
        if rule.decision.value == "auto_approve":
            yield (
                f"servers[{i}]",
                f"{server.get('name')} is prod, but rule {rule.name!r} auto-approves changes to it",
            )


def _secrets(node: Any, where: str) -> Iterator[Hit]:
    if isinstance(node, dict):
        if set(node) == {"secret"}:
            return  # a reference, resolved at run time
        for key, value in node.items():
            path = f"{where}.{key}"
            if isinstance(value, str) and value and _SECRET_KEY.search(str(key)):
                yield path, f"{key} holds a plaintext value"
            else:
                yield from _secrets(value, path)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _secrets(item, f"{where}[{i}]")
    elif isinstance(node, str) and _SECRET_VALUE.search(node):
        yield where, "the value looks like a private key or access token"


def plaintext_secret(facts: Facts) -> Iterator[Hit]:
    for i, server in enumerate(facts.servers):
        yield from _secrets(server, f"servers[{i}]")


def no_env_label(facts: Facts) -> Iterator[Hit]:
    for i, server in enumerate(facts.servers):
        if "env" not in (server.get("labels") or {}):
            yield f"servers[{i}]", f"{server.get('name')} has no env label"


RULES: tuple[Rule, ...] = (
    Rule(
        "net.bind-all",
        "warning",
        "A taskserv listens on every interface",
        "bind it to 127.0.0.1 (or one interface) and expose it through a proxy",
        bind_all,
    ),
    Rule(
        "net.port-conflict",
        "error",
        "Two taskservs want the same port",
        "give each taskserv its own `port`",
        port_conflict,
    ),
    Rule(
        "net.privileged-port",
        "warning",
        "A port below 1024 needs root",
        "use a port of 1024 or above",
        privileged_port,
    ),
    Rule(
        "taskserv.unknown",
        "error",
        "A taskserv is not in the catalog",
        "check the name with `prvng taskserv list`",
        unknown_taskserv,
    ),
    Rule(
        "health.missing",
        "warning",
        "A taskserv has no health check",
        "add `health = { kind = 'http, ... }` or `{ kind = 'command, ... }` to its taskserv.ncl",
        missing_health,
    ),
    Rule(
        "version.unpinned",
        "warning",
        "A taskserv version is not pinned",
        'pin an exact version ("1.2.3"), not a range or `latest`',
        unpinned_version,
    ),
    Rule(
        "policy.prod-approval",
        "critical",
        "Prod servers change without an approval",
        'add a `require_approval` rule for labels = { env = "prod" } before any auto_approve '
        "rule in keeper_policy.ncl",
        prod_without_approval,
    ),
    Rule(
        "secret.plaintext",
        "critical",
        "A secret is written in the config",
        'store it with `prvng secret set` and reference it as { secret = "name" }',
        plaintext_secret,
    ),
    Rule(
        "labels.no-env",
        "info",
        "A server has no env label",
        'label it (labels = { env = "dev" }): policies decide by env',
        no_env_label,
    ),
)
