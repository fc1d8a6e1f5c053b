"""The tool model: everything the registry knows about one operation.

A `ToolSpec` is pure metadata plus a handler. The tiers derive their wire shapes from it
(MCP tool, REST route, CLI subcommand, OpenAPI path) and the contract suite runs its cases.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from registry.errors import ErrorCode

if TYPE_CHECKING:
    from registry.context import ToolContext
    from registry.resources import Resources

TOOL_NAME = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")
PERMISSION = re.compile(r"[a-z][a-z0-9_]*:(read|write|admin)")
REST_PATH = re.compile(r"/[A-Za-z0-9_\-/{}.]*")


class StrictModel(BaseModel):
    """Base of every model that crosses a boundary: unknown fields are an error."""

    model_config = ConfigDict(extra="forbid")


class Risk(StrEnum):
    """How much harm a call can do; drives MCP hints and approval policy."""

    READ = "read"
    WRITE = "write"
    DESTRUCTIVE = "destructive"


class RateClass(StrEnum):
    """Which rate-limit budget a call spends (`registry.ratelimit`): each has its own."""

    READ = "read"
    WRITE = "write"
    EXEC = "exec"
    """Calls that start workflows (the costly ones)."""
    AUTH = "auth"
    """Session log-in and its kin."""


@dataclass(frozen=True, slots=True)
class RestAlias:
    """A REST route that maps to a tool; `{param}` segments become input fields."""

    method: str
    path: str

    def __post_init__(self) -> None:
        if self.method not in {"GET", "POST", "PUT", "PATCH", "DELETE"}:
            raise ValueError(f"unsupported REST method {self.method!r}")
        if not REST_PATH.fullmatch(self.path):
            raise ValueError(f"invalid REST path {self.path!r}")

    @property
    def path_params(self) -> list[str]:
        return re.findall(r"{([A-Za-z_][A-Za-z0-9_]*)}", self.path)


@dataclass(frozen=True, slots=True)
class Call:
    """One tool call, used as a contract case's set-up step."""

    tool: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ContractCase:
    """An example call that every tier must answer identically.

    `expect` is "ok" or the error code the call must fail with; `setup` calls run first
    on the same tier (their results are not compared).
    """

    name: str
    args: dict[str, Any] = field(default_factory=dict)
    expect: ErrorCode | str = "ok"
    setup: tuple[Call, ...] = ()

    @property
    def expects_ok(self) -> bool:
        return self.expect == "ok"


Handler = Callable[[Any, "ToolContext"], Awaitable[Any]]
StreamHandler = Callable[[Any, "ToolContext"], AsyncIterator[Any]]
"""An async generator of items: what a streaming tool yields for as long as the caller reads."""


@dataclass(frozen=True, slots=True)
class Stream:
    """A tool that can also be read as a stream of `item` models (SSE, CLI lines, MCP progress).

    `handler` yields items until the caller stops reading (or the stream ends by itself);
    the tool's ordinary handler answers one bounded page of the same items. Item field
    `cursor_field` numbers the items; input field `resume_arg` resumes after a number (an
    SSE `Last-Event-ID`); item field `kind_field` names each item's kind (the SSE event).
    """

    item_model: type[BaseModel]
    handler: StreamHandler
    cursor_field: str = "seq"
    resume_arg: str = "since"
    kind_field: str = "kind"


@dataclass(frozen=True, slots=True)
class Follow:
    """A tool whose call blocks on a workflow that a stream tool can show meanwhile.

    A tier that can show progress sets input field `id_field` (when the caller did not),
    and reads stream tool `stream` with `{filter_field: id, "until_finished": true}` while
    the call runs. `when` names the boolean input that makes the call block (None: always).
    """

    stream: str
    id_field: str = "id"
    filter_field: str = "workflow_id"
    when: str | None = "wait"


@dataclass(frozen=True, slots=True)
class Target:
    """One thing a call acts on, as the authorizer sees it (a server, workflow, user...).

    `attrs` carries kind-specific facts a policy may test (a workflow's action kinds)."""

    kind: str
    id: str
    labels: tuple[tuple[str, str], ...] = ()
    owner: str | None = None
    environment: str | None = None
    attrs: tuple[tuple[str, tuple[str, ...]], ...] = ()


TargetFinder = Callable[[Any, "Resources"], Awaitable[list[Target]]]
"""What a call targets, from its validated input (and, if needed, the stores)."""


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One operation, defined once for every tier."""

    name: str
    summary: str
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    handler: Handler
    permission: str
    risk: Risk = Risk.READ
    description: str = ""
    requires_approval: bool = False
    idempotent: bool = False
    rest: RestAlias | None = None
    compat: tuple[RestAlias, ...] = ()
    """Older routes kept for existing callers: served like `rest`, deprecated in OpenAPI."""
    tags: tuple[str, ...] = ()
    cases: tuple[ContractCase, ...] = ()
    volatile_paths: tuple[str, ...] = ()
    secret_fields: tuple[str, ...] = ()
    """Input fields holding a secret: left out of the audit's args digest (no value oracle)."""
    stream: Stream | None = None
    follow: Follow | None = None
    targets: TargetFinder | None = None
    """Per-resource authorization: without it, the call's target is the tool itself."""
    rate_class: RateClass | None = None
    """The rate-limit budget it spends; unset: `read` for a read, else `write`."""

    def __post_init__(self) -> None:
        if not TOOL_NAME.fullmatch(self.name):
            raise ValueError(f"tool name {self.name!r} must look like 'group.action'")
        if not PERMISSION.fullmatch(self.permission):
            raise ValueError(f"permission {self.permission!r} must look like 'domain:read|write'")
        if not self.summary or len(self.summary) > 120:
            raise ValueError(f"tool {self.name}: summary must be 1-120 characters")
        if self.compat and self.rest is None:
            raise ValueError(f"tool {self.name}: compatibility routes need a current `rest` one")
        for route in self.routes:
            missing = [p for p in route.path_params if p not in self.input_model.model_fields]
            if missing:
                raise ValueError(f"tool {self.name}: REST path params {missing} not in input")
        if self.follow is not None:
            fields = self.input_model.model_fields
            wanted = [self.follow.id_field, *([self.follow.when] if self.follow.when else [])]
            if missing := [name for name in wanted if name not in fields]:
                raise ValueError(f"tool {self.name}: follow fields {missing} not in input")

    @property
    def routes(self) -> tuple[RestAlias, ...]:
        """Every REST route of the tool: the current one first, then the compatibility ones."""
        return () if self.rest is None else (self.rest, *self.compat)

    @property
    def group(self) -> str:
        return self.name.rsplit(".", 1)[0]

    @property
    def action(self) -> str:
        return self.name.rsplit(".", 1)[1]

    @property
    def read_only(self) -> bool:
        return self.risk is Risk.READ

    @property
    def limit_class(self) -> RateClass:
        """`rate_class`, or what the risk implies."""
        if self.rate_class is not None:
            return self.rate_class
        return RateClass.READ if self.risk is Risk.READ else RateClass.WRITE
