"""The `local` provider: a server is a private sandbox directory on this machine.

`PRVNG_HOME/servers/<name>/` (mode 0700) holds `server.json`, and the taskservs installed
there (`taskservs/<taskserv>/`, `run/` pidfiles and the launch ledger, `logs/`, `bin/`).
A symlink planted anywhere on that path is refused, never followed; delete stops only the
processes the platform launched there (see `launches`). The inventory record
(table `server`, shared with `server.register|list|get`) says `provider="local"`,
`address="127.0.0.1"` and the sandbox path.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from contextlib import suppress
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from daemons.common.files import UnsafePath, atomic_write_json, private_dir
from daemons.common.inventory import Inventory
from daemons.common.settings import Settings
from daemons.common.state import StateStore
from daemons.orchestrator.actions.base import ActionContext
from daemons.orchestrator.actions.processes import stop_pids
from daemons.orchestrator.provisioning.launches import launched
from daemons.orchestrator.provisioning.providers.provider import check_server_name
from registry.errors import Conflict, InvalidInput, NotFound, Unavailable
from registry.timestamps import utc_now_iso

SANDBOX_DIRS = ("taskservs", "run", "logs", "bin")
STOP_GRACE_S = 5.0


class LocalOptions(BaseModel):
    """What `server.create` may ask of a local server."""

    model_config = ConfigDict(extra="forbid")

    labels: dict[str, str] = Field(default_factory=dict)
    plan: str | None = Field(default=None, description="Recorded only: a sandbox has no size")


class LocalProvider:
    """Sandbox directories under `settings.servers_dir`, recorded in the inventory."""

    name = "local"

    def __init__(self, settings: Settings, state: StateStore | None) -> None:
        self._settings = settings
        self._state = state

    def sandbox(self, name: str) -> Path:
        return self._settings.servers_dir / check_server_name(name)

    def _inventory(self) -> Inventory:
        if self._state is None:
            raise Unavailable(
                "the local provider needs the platform state store to record servers; "
                "run this through the orchestrator daemon (`prvng daemon orchestrator`)"
            )
        return Inventory(self._state)

    async def _record(self, name: str) -> dict[str, Any] | None:
        try:
            record = await self._inventory().get(name)
        except NotFound:
            return None
        if record.get("provider") != self.name:
            raise Conflict(
                f"server {name!r} belongs to provider {record.get('provider')!r}, not "
                f"{self.name!r}; use another name or that provider",
                details={"server": name, "provider": record.get("provider")},
            )
        return record

    async def create_server(
        self, name: str, options: dict[str, Any], ctx: ActionContext
    ) -> dict[str, Any]:
        try:
            opts = LocalOptions.model_validate(options)
        except ValidationError as exc:
            raise InvalidInput(
                f"bad options for local server {name!r}: {exc.errors()[0]['msg']} "
                f"(at {'.'.join(map(str, exc.errors()[0]['loc']))}); local servers take "
                "`labels` and `plan`",
                details={"server": name, "errors": json.loads(exc.json())},
            ) from None
        sandbox = self.sandbox(name)
        existing = await self._record(name)
        created = not (sandbox / "server.json").is_file()
        await asyncio.to_thread(
            _make_sandbox, self._settings.home, sandbox, name, opts, ctx.idempotency_key
        )
        fields = {
            "provider": self.name,
            "address": "127.0.0.1",
            "labels": opts.labels,
            "status": "running",
            "sandbox": str(sandbox),
        }
        inventory = self._inventory()
        if existing is None:
            try:
                await inventory.register(name, {**fields, "taskservs": []})
            except Conflict:  # registered meanwhile by a concurrent run: converge on it
                await inventory.update(name, fields)
        else:
            await inventory.update(name, fields)
        state = "created" if created else "exists"
        ctx.log("info", f"local server {name!r} {state} at {sandbox}\n")
        return {**fields, "name": name, "created": created}

    async def delete_server(self, name: str, ctx: ActionContext) -> dict[str, Any]:
        sandbox = self.sandbox(name)
        if sandbox.is_symlink():
            raise _unsafe(UnsafePath(sandbox))
        existing = await self._record(name)
        inventory = self._inventory()
        if existing is not None:
            await inventory.update(name, {"status": "deleting"})
        stopped = await stop_pids(launched(sandbox), STOP_GRACE_S)
        if stopped:
            ctx.log("info", f"stopped {len(stopped)} process(es) of {name!r}: {stopped}\n")
        existed = sandbox.exists()
        if existed:
            await asyncio.to_thread(_remove_tree, sandbox)
        if existing is not None:
            await inventory.update(name, {"status": "deleted", "taskservs": []})
        ctx.log("info", f"local server {name!r} {'deleted' if existed else 'had no sandbox'}\n")
        return {
            "name": name,
            "provider": self.name,
            "status": "deleted",
            "existed": existed or existing is not None,
            "stopped_pids": stopped,
        }

    async def server_status(self, name: str) -> dict[str, Any]:
        sandbox = self.sandbox(name)
        record = await self._record(name)
        return {
            "name": name,
            "provider": self.name,
            "status": record["status"] if record else "missing",
            "sandbox": str(sandbox),
            "exists": sandbox.is_dir(),
            "pids": [proc.pid for proc in launched(sandbox)],
            "taskservs": record.get("taskservs", []) if record else [],
        }


def _unsafe(exc: UnsafePath) -> Conflict:
    return Conflict(str(exc), details={"path": str(exc.path)})


def _make_sandbox(
    home: Path, sandbox: Path, name: str, opts: LocalOptions, idempotency_key: str
) -> None:
    try:
        for sub in SANDBOX_DIRS:  # the sandbox and every folder on the way: 0700, no link
            private_dir(sandbox / sub, home=home)
    except UnsafePath as exc:
        raise _unsafe(exc) from None
    meta_file = sandbox / "server.json"
    created_at = utc_now_iso()
    if meta_file.is_file():
        with suppress(ValueError, AttributeError):  # a torn file from a crash: rewritten below
            created_at = json.loads(meta_file.read_text()).get("created_at", created_at)
    meta = {
        "name": name,
        "provider": "local",
        "labels": opts.labels,
        "plan": opts.plan,
        "created_at": created_at,
        "updated_at": utc_now_iso(),
        "idempotency_key": idempotency_key,
    }
    atomic_write_json(meta_file, meta)


def _remove_tree(path: Path) -> None:
    with suppress(FileNotFoundError):  # removed meanwhile: the goal is reached
        shutil.rmtree(path)
