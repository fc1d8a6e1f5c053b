"""`python -m bench.authz`: what authentication + Cedar + rate limit + audit add to a call.

The same read call (`platform.info`) is measured, alternately, on a registry with
security off (a fixed principal, allow-all authorizer, no limit, no audit) and on the
assembled one called with a stored API key (authenticator, Cedar, token bucket, audit)
and with a session token. Floor: ≤ 100 µs median per call (goal ≤ 30 µs).
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import tempfile
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from bench.common import measure_pair_async, print_table, verdict
from daemons.common.keystore import KeyStore
from daemons.common.settings import PROJECT_ROOT, Settings
from registry import AuditRecord, Principal, Registry, ToolSpec
from registry.resources import Resources
from servers.assembly import build_registry
from tools import all_specs

N = 3000
TOOL = "platform.info"
FLOOR_US, GOAL_US = 100.0, 30.0


class _AllowAll:
    def may_call(self, principal: Principal, spec: ToolSpec) -> bool:
        return True

    async def authorize(
        self, principal: Principal, spec: ToolSpec, args: Any, resources: Resources
    ) -> None:
        return None


class _NoAudit:
    async def record(self, record: AuditRecord) -> None:
        return None


async def _off(settings: Settings) -> tuple[Registry, Principal]:
    keystore = KeyStore(settings)
    registry = Registry(authenticator=keystore, audit_sink=_NoAudit(), authorizer=_AllowAll())
    registry.resources.put(Settings, settings)
    registry.extend(all_specs())
    return registry, keystore.owner()


async def run(home: Path) -> list[list[str]]:
    settings = dataclasses.replace(
        Settings(home=home, config_dir=PROJECT_ROOT / "config", cache_dir=home / "cache"),
        surreal_url="mem://",
        rate_limit="1000000/s",
    )
    off, owner = await _off(settings)
    on = build_registry(settings)
    try:
        await on.invoke("user.create", {"name": "bench", "roles": ["viewer"]}, principal=owner)
        key = (await on.invoke("apikey.create", {"user": "bench"}, principal=owner)).data
        assert isinstance(key, dict)
        session = (await on.invoke("session.login", {}, credential=key["key"])).data
        assert isinstance(session, dict)
        rows = []
        for label, credential in (("API key", key["key"]), ("session token", session["token"])):

            def secured_call(c: str = str(credential)) -> Awaitable[object]:
                return on.invoke(TOOL, {}, credential=c)

            base, secured = await measure_pair_async(
                ("security off", lambda: off.invoke(TOOL, {}, principal=owner)),
                (label, secured_call),
                N,
            )
            extra = secured.median_us - base.median_us
            rows.append(
                [
                    label,
                    f"{base.median_us:.1f}",
                    f"{secured.median_us:.1f}",
                    f"{extra:.1f}",
                    verdict(extra <= FLOOR_US),
                    "met" if extra <= GOAL_US else "not met",
                ]
            )
        return rows
    finally:
        await on.aclose()
        await off.aclose()


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="prvng-bench-authz-") as tmp:
        rows = asyncio.run(run(Path(tmp)))
    print_table(
        f"Security steps per call ({TOOL}, median of {N}, security off measured alongside)",
        ["credential", "off µs", "on µs", "added µs", f"≤ {FLOOR_US:g} µs", f"goal {GOAL_US:g}"],
        rows,
    )
    return 0 if all(row[4] == "PASS" for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
