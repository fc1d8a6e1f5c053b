"""Toolsets: the tools grouped by the domain of their name, so a client can load a subset.

| toolset | tools |
|---|---|
| `servers` | `server.*` |
| `taskservs` | `taskserv.*` |
| `workflows` | `workflow.*` |
| `tasks` | `task.*` |
| `access` | `user.*`, `role.*`, `apikey.*`, `session.*`, `policy.*`, `identity.*` |
| `secrets` | `secret.*` |
| `config` | `config.*` |
| `settings` | `settings.*` (generate, validate, recommend, plan, complete a workspace) |
| `ops` | `ops.*` (the ops plane: requests, approvals) |
| `platform` | `platform.*`, `tools.*` (the listing itself) |

A domain not in the table is a toolset of its own name. A toolset shapes a listing only:
what a principal may call is the authorizer's to say.
"""

from __future__ import annotations

from collections.abc import Iterable

from registry.errors import InvalidInput

_BY_DOMAIN = {
    "server": "servers",
    "taskserv": "taskservs",
    "workflow": "workflows",
    "task": "tasks",
    "user": "access",
    "role": "access",
    "apikey": "access",
    "session": "access",
    "policy": "access",
    "identity": "access",
    "secret": "secrets",
    "config": "config",
    "platform": "platform",
    "tools": "platform",
}


def toolset_of(tool: str) -> str:
    """The toolset of a tool name (`server.register` → `servers`)."""
    domain = tool.partition(".")[0]
    return _BY_DOMAIN.get(domain, domain)


def parse_toolsets(text: str, tools: Iterable[str]) -> frozenset[str]:
    """`servers,tasks` as the set of toolsets it names among those of `tools` (names);
    `InvalidInput` lists the known ones when one is not."""
    known = {toolset_of(name) for name in tools}
    wanted = frozenset(part.strip() for part in text.split(",") if part.strip())
    unknown = sorted(wanted - known)
    if unknown or not wanted:
        raise InvalidInput(
            f"unknown toolset {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(sorted(known))} (comma-separated)",
            details={"unknown": unknown, "toolsets": sorted(known)},
        )
    return wanted
