"""`settings.generate`: a workspace config for a deployment mode from a few answers.

The config is written as Nickel under the workspace contract (`schemas/server.ncl`) and
evaluated through the config cache before it is returned, so what comes back is valid by
construction, with its exported JSON next to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from registry import ContractCase, Internal, RestAlias, Risk, StrictModel, ToolContext, ToolSpec
from registry.errors import PlatformError
from tools.settings.nickel_text import workspace_text
from tools.settings.source import evaluate_text, workspace_of

Mode = Literal["solo", "multiuser", "cicd", "enterprise"]
Env = Literal["dev", "lab", "ci", "staging", "prod"]
WEB_PORT = 18081
"""The first static-web port; each further web server takes the next (local servers
share 127.0.0.1)."""


@dataclass(frozen=True, slots=True)
class Profile:
    """What a mode means: how many servers by default, their env and their roles."""

    servers: int
    env: Env
    roles: tuple[str, ...]
    """Server roles in turn: `web` runs static-web, `data` kv-store, `node` nothing."""
    note: str


PROFILES: dict[str, Profile] = {
    "solo": Profile(1, "dev", ("web",), "one server on this machine, everything auto-approved"),
    "multiuser": Profile(2, "dev", ("web", "data"), "shared dev servers, one per tier"),
    "cicd": Profile(1, "ci", ("data",), "throw-away servers without fixed ports for CI jobs"),
    "enterprise": Profile(
        3, "prod", ("web", "data", "web"), "prod servers: every change needs an approval"
    ),
}
_TASKSERVS = {"web": "static-web", "data": "kv-store"}


class GenerateInput(StrictModel):
    mode: Mode
    name: str = Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$", description="Workspace name")
    provider: Literal["local"] = "local"
    servers: int | None = Field(default=None, ge=1, le=20, description="Mode's default if unset")
    env: Env | None = Field(default=None, description="`env` label; the mode's if unset")


class GenerateOutput(StrictModel):
    mode: Mode
    nickel: str = Field(description="The workspace file (save it under PRVNG_CONFIG)")
    value: dict[str, Any] = Field(description="Its exported JSON")
    notes: list[str]


def workspace_value(args: GenerateInput) -> dict[str, Any]:
    """The workspace record the answers describe."""
    profile = PROFILES[args.mode]
    env = args.env or profile.env
    servers: list[dict[str, Any]] = []
    port = WEB_PORT
    for i in range(args.servers or profile.servers):
        role = profile.roles[i % len(profile.roles)]
        server: dict[str, Any] = {
            "name": f"{args.name}-{role}-{i + 1}",
            "provider": args.provider,
            "labels": {"env": env, "tier": role, "mode": args.mode},
        }
        if role == "web":
            server["taskservs"] = [{"name": "static-web", "port": port}]
            port += 1
        elif role in _TASKSERVS:
            server["taskservs"] = [{"name": _TASKSERVS[role]}]
        servers.append(server)
    return {"name": args.name, "servers": servers}


def _notes(args: GenerateInput, env: str) -> list[str]:
    notes = [f"{args.mode}: {PROFILES[args.mode].note}"]
    if env == "prod":
        notes.append(
            "env=prod: the keeper policy (keeper_policy.ncl) must require approval for it; "
            "`prvng settings recommend` checks"
        )
    notes.append('preview what it would create: `prvng settings plan --text "$(cat FILE)"`')
    return notes


async def generate(args: GenerateInput, ctx: ToolContext) -> GenerateOutput:
    value = workspace_value(args)
    env = args.env or PROFILES[args.mode].env
    text = workspace_text(value, f"{args.mode} workspace {args.name!r}, by settings.generate")
    try:
        exported = await evaluate_text(await workspace_of(ctx), text)
    except PlatformError as exc:  # the schemas and this module disagree: our bug
        raise Internal(
            f"the generated workspace does not meet the schemas: {exc.message}",
            details=exc.details,
        ) from None
    return GenerateOutput(mode=args.mode, nickel=text, value=exported, notes=_notes(args, env))


TOOLS = [
    ToolSpec(
        name="settings.generate",
        summary="Write a workspace config (Nickel and JSON) for solo, multiuser, cicd or "
        "enterprise",
        input_model=GenerateInput,
        output_model=GenerateOutput,
        handler=generate,
        permission="config:read",
        risk=Risk.READ,
        idempotent=True,
        rest=RestAlias("POST", "/v1/settings/generate"),
        tags=("settings", "config"),
        cases=(
            ContractCase("solo", {"mode": "solo", "name": "home"}),
            ContractCase("enterprise", {"mode": "enterprise", "name": "corp", "servers": 4}),
            ContractCase("bad mode", {"mode": "huge", "name": "x"}, expect="invalid_input"),
        ),
    ),
]
