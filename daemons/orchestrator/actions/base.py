"""The action seam: what a task does. One module per action, registered by name.

An action validates its params with `params_model` at submit time (so a bad spec is
refused before anything runs) and receives them again, validated, when it runs. It must
be safe to run twice with the same `idempotency_key`: after a crash the engine re-runs
a task that had started but not finished (at-least-once).

One error policy for every action (`is_retryable`): an attempt is retried when what failed
may go away by itself (`Unavailable`, its subclass `Timeout`, `Internal`, an attempt that
ran out of time, an unexpected exception) and not when it would fail the same way again
(`InvalidInput`, `NotFound`, `Conflict`, `Forbidden`, ...). An `ActionError` carries the
action's own verdict in `retryable`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel

from daemons.common.settings import Settings
from daemons.common.state import StateStore
from registry.errors import Internal, PlatformError, Unavailable

LogSink = Callable[[str, str], None]
"""`(stream, text)`: stream is "stdout", "stderr" or "info"; the engine caps the total."""


class ActionError(PlatformError):
    """A task attempt failed; `retryable=False` skips the remaining attempts."""

    def __init__(
        self, message: str, *, retryable: bool = True, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, details=details)
        self.retryable = retryable


def is_retryable(exc: PlatformError) -> bool:
    """Whether another attempt may succeed: the one rule, used by the engine and actions."""
    if isinstance(exc, ActionError):
        return exc.retryable
    return isinstance(exc, Unavailable | Internal)


def action_error(exc: PlatformError) -> ActionError:
    """A platform error as a failed attempt, retryable by `is_retryable`, its code kept."""
    if isinstance(exc, ActionError):
        return exc
    return ActionError(
        exc.message,
        retryable=is_retryable(exc),
        details={**exc.details, "code": exc.code.value},
    )


@dataclass(frozen=True, slots=True)
class ActionContext:
    """What a running task knows about itself."""

    workflow_id: str
    task_id: str
    attempt: int
    idempotency_key: str
    workspace: Path
    """The workflow's working directory (`PRVNG_HOME/work/<workflow_id>`), made by the engine;
    relative paths (a shell task's `cwd`) resolve inside it and may not leave it."""
    settings: Settings
    log: LogSink
    state: StateStore | None = None
    """The shared state store when the engine has one (provider actions record servers)."""


class Action(Protocol):
    name: ClassVar[str]
    params_model: ClassVar[type[BaseModel]]

    async def run(self, params: BaseModel, ctx: ActionContext) -> dict[str, Any]:
        """Do the work; return a small JSON-able result recorded in the journal."""
        ...
