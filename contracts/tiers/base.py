"""What every tier shares: its private environment, the answer it reports, the wire checks.

A tier turns `(tool, args)` into its own wire format, sends it, and reads the answer back
into an `Outcome`. Anything the wire got wrong on the way (a status or exit code that
disagrees with the error table, a malformed envelope) is a `problem` of that outcome.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from daemons.common.keystore import KeyStore
from daemons.common.settings import Settings
from registry import Call, Principal, Registry

RegistryFactory = Callable[[Settings], Registry]


@dataclass(slots=True)
class Outcome:
    """One answer as a tier delivered it: success data or the `error` member."""

    ok: bool
    data: Any = None
    error: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)
    answered: bool = True

    @property
    def code(self) -> str | None:
        return None if self.error is None else str(self.error.get("code"))

    @classmethod
    def no_answer(cls, problem: str) -> Outcome:
        """The call broke before any answer arrived (timeout, crash, protocol error)."""
        return cls(ok=False, problems=[problem], answered=False)

    @classmethod
    def from_envelope(cls, body: Any, problems: list[str]) -> Outcome:
        """An outcome from a JSON envelope, after checking its shape."""
        problems = [*problems, *envelope_problems(body)]
        if not isinstance(body, dict) or not isinstance(body.get("ok"), bool):
            return cls(ok=False, problems=problems, answered=False)
        if body["ok"]:
            return cls(ok=True, data=body.get("data"), problems=problems)
        error = body.get("error")
        return cls(ok=False, error=error if isinstance(error, dict) else None, problems=problems)

    def summary(self) -> str:
        if not self.answered:
            return "no answer"
        return "ok" if self.ok else f"error {self.code}"


@dataclass(slots=True)
class Listing:
    """A tier's own listing: a `ToolListing` JSON (`data`), or MCP tool descriptions."""

    label: str
    data: Any = None
    mcp_tools: list[dict[str, Any]] | None = None
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class TierEnv:
    """A tier's private world: its own PRVNG_HOME (with a mem:// state store)."""

    settings: Settings
    cache_root: Path
    registry_factory: RegistryFactory
    call_timeout: float
    role: str | None = None
    """Call as a principal with only this built-in role (the role matrix), not as admin."""

    @classmethod
    def create(
        cls,
        home: Path,
        config_dir: Path,
        cache_root: Path,
        registry_factory: RegistryFactory,
        call_timeout: float,
        role: str | None = None,
    ) -> TierEnv:
        settings = Settings(
            home=home,
            config_dir=config_dir,
            cache_dir=cache_root / "provisioning",
            surreal_url="mem://",
            rate_limits="off",  # equivalence, not load: no case may meet a limit
        )
        return cls(settings, cache_root, registry_factory, call_timeout, role)

    def owner(self) -> Principal:
        """The admin principal (creates the bootstrap key in this home on first use)."""
        return KeyStore(self.settings).owner()

    def admin_key(self) -> str:
        self.owner()
        return self.settings.admin_key_file.read_text().strip()

    def caller_key(self) -> str:
        """The key this tier calls with: the admin key, or (with `role`) a key of a
        principal holding only that role, in this home's key file so every process
        of the tier knows it."""
        if self.role is None:
            return self.admin_key()
        path = self.settings.credentials_dir / f"matrix-{self.role}-key"
        if not path.exists():
            self.owner()
            path.write_text(KeyStore(self.settings).create(f"matrix-{self.role}", [self.role]))
        return path.read_text()

    def caller(self) -> Principal:
        principal = KeyStore(self.settings).check(self.caller_key())
        assert principal is not None
        return principal

    def subprocess_env(self) -> dict[str, str]:
        """The environment of a tier's subprocess: this home only, no caller's PRVNG_*."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PRVNG_")}
        env.update(
            PRVNG_HOME=str(self.settings.home),
            PRVNG_CONFIG=str(self.settings.config_dir),
            PRVNG_SURREAL_URL="mem://",
            PRVNG_RATE_LIMITS="off",
            XDG_CACHE_HOME=str(self.cache_root),
        )
        if self.role is not None:
            env["PRVNG_API_KEY"] = self.caller_key()
        return env

    async def open_registry(self, stack: AsyncExitStack) -> Registry:
        registry = self.registry_factory(self.settings)
        stack.push_async_callback(registry.aclose)
        return registry


class Tier(ABC):
    """One way in to the platform; used as `async with tier:` around its calls."""

    key: ClassVar[str]
    name: ClassVar[str]

    def __init__(self, env: TierEnv) -> None:
        self.env = env
        self._stack = AsyncExitStack()

    @abstractmethod
    async def _start(self, stack: AsyncExitStack) -> None:
        """Start what the tier needs; register its teardown on `stack`."""

    @abstractmethod
    async def call(self, tool: str, args: dict[str, Any]) -> Outcome: ...

    async def setup(self, call: Call) -> Outcome:
        """Run a case's set-up call (its answer is not compared)."""
        return await self.call(call.tool, call.args)

    @abstractmethod
    async def listing(self) -> Listing: ...

    async def __aenter__(self) -> Tier:
        try:
            await self._start(self._stack)
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()


def prvng_executable() -> str:
    """The `prvng` script of this interpreter's environment."""
    beside = Path(sys.executable).with_name("prvng")
    if beside.exists():
        return str(beside)
    found = shutil.which("prvng")
    if found is None:
        raise FileNotFoundError("no `prvng` script found; install the project (`make test`)")
    return found


def error_problems(error: Any) -> list[str]:
    """What is wrong with an `error` member `{code, message, details}`."""
    if not isinstance(error, dict):
        return [f"error member is {type(error).__name__}, not an object"]
    problems = []
    if not isinstance(error.get("code"), str):
        problems.append("error.code is missing or not a string")
    if not isinstance(error.get("message"), str) or not error.get("message"):
        problems.append("error.message is missing or empty")
    if not isinstance(error.get("details"), dict):
        problems.append("error.details is missing or not an object")
    return problems


def envelope_problems(body: Any) -> list[str]:
    """What is wrong with a full envelope `{ok, data|error, trace_id, timestamp}`."""
    if not isinstance(body, dict):
        return [f"envelope is {type(body).__name__}, not an object"]
    if not isinstance(body.get("ok"), bool):
        return ["envelope has no boolean 'ok'"]
    problems = []
    if body["ok"] and "data" not in body:
        problems.append("success envelope has no 'data'")
    if not body["ok"]:
        problems.extend(error_problems(body.get("error")))
    if not isinstance(body.get("trace_id"), str) or not body.get("trace_id"):
        problems.append("envelope has no trace_id")
    try:
        datetime.fromisoformat(str(body.get("timestamp")).replace("Z", "+00:00"))
    except ValueError:
        problems.append(f"envelope timestamp {body.get('timestamp')!r} is not ISO 8601")
    return problems


def parse_json(text: str | bytes, what: str) -> tuple[Any, list[str]]:
    """JSON from a wire, or None and a problem naming `what` and a bit of the text."""
    try:
        return json.loads(text), []
    except ValueError:
        shown = text.decode(errors="replace") if isinstance(text, bytes) else text
        shown = shown.strip()
        return None, [f"{what} is not JSON: {shown[:300]!r}"]
