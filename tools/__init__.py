"""The operations, grouped by domain, and the builder that wires them into a registry.

Adding an operation: write its models and handler in a module here, list its `ToolSpec`
in that module's `TOOLS` (with contract cases), and name the module in `TOOL_MODULES`.
Every tier, OpenAPI and the contract suite pick it up from there.
"""

from __future__ import annotations

from importlib import import_module

from daemons.common.settings import Settings
from daemons.common.state import StateStore
from registry import JsonlAuditSink, Registry, ToolSpec
from registry.ratelimit import RateLimiter, TokenBucketLimiter
from tools.auth.keystore import KeyStore
from tools.workflow.orchestrator import OrchestratorHandle, open_orchestrator

TOOL_MODULES = (
    "tools.catalog",
    "tools.platform",
    "tools.config.tools",
    "tools.server.tools",
    "tools.server.lifecycle",
    "tools.taskserv.tools",
    "tools.workflow.tools",
    "tools.workflow.tasks",
)


def all_specs() -> list[ToolSpec]:
    specs: list[ToolSpec] = []
    for module in TOOL_MODULES:
        specs.extend(import_module(module).TOOLS)
    return specs


def _rate_limiter(setting: str | None) -> RateLimiter | None:
    """`PRVNG_RATE_LIMIT=100/s` (burst = twice the rate) or `100/s:500` (explicit burst)."""
    if not setting:
        return None
    rate_part, _, burst_part = setting.partition(":")
    rate = float(rate_part.removesuffix("/s"))
    return TokenBucketLimiter(rate, int(burst_part) if burst_part else max(1, int(rate * 2)))


def build_registry(settings: Settings, *, keystore: KeyStore | None = None) -> Registry:
    """A registry with every operation, authenticating against the platform's key store."""
    keystore = keystore or KeyStore(settings)
    registry = Registry(
        authenticator=keystore,
        audit_sink=JsonlAuditSink(
            settings.logs_dir / "audit.jsonl",
            max_bytes=settings.audit_max_bytes,
            max_age_s=settings.audit_max_age_s,
            retention=settings.audit_retention,
        ),
        rate_limiter=_rate_limiter(settings.rate_limit),
    )
    registry.resources.put(Settings, settings)
    registry.resources.put(KeyStore, keystore)
    registry.resources.provide(StateStore, lambda: StateStore.open(settings.state_url))
    registry.resources.provide(
        OrchestratorHandle, lambda: open_orchestrator(settings, registry.resources)
    )
    registry.extend(all_specs())
    return registry


__all__ = ["TOOL_MODULES", "all_specs", "build_registry"]
