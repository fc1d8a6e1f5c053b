"""The running system, assembled in one place: settings → stores → daemon handles → registry.

Every process that runs operations (the platform, a one-shot CLI call, stdio MCP, the
contract harness, the benchmarks) builds its registry here, so a new daemon is wired in
exactly once. Tools get what is built here through their context's resources; they never
construct a store or a daemon themselves.

    Settings ─┬─ PlatformAuthenticator (bootstrap KeyStore, IdentityStore, SessionSigner)
              ├─ CedarAuthorizer    (PRVNG_CONFIG/policies, validated now)
              ├─ FanOutSink(JsonlAuditSink tail, AuditStore in SurrealDB)
              ├─ TokenBucketLimiter (PRVNG_RATE_LIMITS; its summed refusals to the same sink)
              ├─ StateStore         (lazy: opened on first use)
              ├─ OrchestratorHandle (lazy: the engine in process, or the daemon's client)
              ├─ ConfigCache        (ncl-sync's cache: every config read; ncl-sync.ncl)
              ├─ AuditVerifier      (the signed audit repository's check; PRVNG_NATS_URL)
              └─ HealthBoard        (registry, state, orchestrator probes)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from daemons.audit_mirror.daemon import AuditVerifier
from daemons.common.audit_store import AuditStore
from daemons.common.authentication import PlatformAuthenticator
from daemons.common.authorization import CedarAuthorizer
from daemons.common.files import private_dir
from daemons.common.health import ComponentStatus, HealthBoard
from daemons.common.identity import IdentityStore
from daemons.common.keystore import KeyStore
from daemons.common.sessions import SessionSigner
from daemons.common.settings import Settings
from daemons.common.state import StateStore
from daemons.ncl_sync import ConfigCache, NclSyncConfig, open_cache
from daemons.orchestrator.model import WorkflowState
from daemons.orchestrator.protocol import OrchestratorHandle
from registry import JsonlAuditSink, Principal, Registry, Resources
from registry.audit import FanOutSink
from registry.errors import InvalidInput
from registry.ratelimit import Limit, TokenBucketLimiter, limits_from
from tools import all_specs


def rate_limits(settings: Settings) -> dict[str, Limit | None]:
    """The configured limits, or `InvalidInput` saying what is wrong with the setting."""
    try:
        return limits_from(settings.rate_limits, settings.rate_limit)
    except ValueError as exc:
        raise InvalidInput(str(exc), details={"setting": "PRVNG_RATE_LIMITS"}) from None


@asynccontextmanager
async def open_orchestrator(
    settings: Settings, resources: Resources
) -> AsyncIterator[OrchestratorHandle]:
    """The daemon's client when it runs apart (`PRVNG_ORCHESTRATOR_URL`), else an engine in
    this process, recovering its journal before it answers."""
    if settings.orchestrator_url:
        from daemons.orchestrator.serving.client import OrchestratorClient

        async with OrchestratorClient.from_settings(settings, settings.orchestrator_url) as client:
            yield OrchestratorHandle(client, settings.orchestrator_url)
        return
    from daemons.orchestrator.engine.service import Orchestrator

    async with Orchestrator(settings, state=await resources.get(StateStore)) as engine:
        yield OrchestratorHandle(engine, "in process", engine.health)


@asynccontextmanager
async def open_config_cache(settings: Settings) -> AsyncIterator[ConfigCache]:
    """ncl-sync's cache as configured by the workspace's `ncl-sync.ncl`."""
    yield open_cache(settings, NclSyncConfig.load(settings.config_dir))


def _health_board(registry: Registry) -> HealthBoard:
    resources = registry.resources
    board = HealthBoard()

    async def tools() -> ComponentStatus:
        return ComponentStatus(True, f"{len(registry)} tools")

    async def state() -> ComponentStatus:
        store = await resources.get(StateStore)
        await store.query("RETURN 1")
        return ComponentStatus(True, store.url.split("://", 1)[0])

    async def orchestrator() -> ComponentStatus:
        if not resources.is_open(OrchestratorHandle):  # a one-shot process starts it on use
            return ComponentStatus(True, "starts on first use")
        return resources.peek(OrchestratorHandle).status()

    board.add("registry", tools)
    board.add("state", state)
    board.add("orchestrator", orchestrator)
    return board


def build_registry(settings: Settings, *, keystore: KeyStore | None = None) -> Registry:
    """A registry with every operation and the resources they use, on `settings`."""
    keystore = keystore or KeyStore(settings)
    specs = all_specs()
    resources = Resources()
    identities = IdentityStore(lambda: resources.get(StateStore))
    audit_index = AuditStore(lambda: resources.get(StateStore))
    signer = SessionSigner(settings)
    authorizer = CedarAuthorizer(settings.config_dir / "policies", specs)
    private_dir(settings.logs_dir, home=settings.home)  # the audit log's, 0700 whatever the umask
    audit_sink = FanOutSink(
        [
            JsonlAuditSink(
                settings.logs_dir / "audit.jsonl",
                max_bytes=settings.audit_max_bytes,
                max_age_s=settings.audit_max_age_s,
                retention=settings.audit_retention,
            ),
            audit_index,
        ]
    )
    limiter = TokenBucketLimiter(
        rate_limits(settings), sink=audit_sink, exempt_roles=settings.rate_limit_exempt
    )
    registry = Registry(
        authenticator=PlatformAuthenticator(keystore, identities, signer),
        authorizer=authorizer,
        resources=resources,
        audit_sink=audit_sink,
        rate_limiter=limiter,
    )
    resources.put(TokenBucketLimiter, limiter)
    resources.put(Settings, settings)
    resources.put(IdentityStore, identities)
    resources.put(AuditStore, audit_index)
    resources.put(SessionSigner, signer)
    resources.put(CedarAuthorizer, authorizer)
    resources.put(AuditVerifier, AuditVerifier.from_settings(settings))
    resources.provide(StateStore, lambda: StateStore.open(settings.state_url))
    resources.provide(OrchestratorHandle, lambda: open_orchestrator(settings, resources))
    resources.provide(ConfigCache, lambda: open_config_cache(settings))
    resources.put(HealthBoard, _health_board(registry))
    registry.extend(specs)
    return registry


async def local_principal(settings: Settings, registry: Registry, keystore: KeyStore) -> Principal:
    """Who a process on this home runs as: the principal of `PRVNG_API_KEY` when one is
    set (`Unauthenticated` if it is not valid), else the home's owner (the admin key)."""
    if settings.api_key:
        return await registry.authenticate(settings.api_key)
    return keystore.owner()


async def finish_started_work(registry: Registry, tell: Callable[[str], None]) -> None:
    """Before a one-shot process exits: run to the end the workflows its engine holds, since
    nothing else would run them until the engine's next start. No-op when no engine ran."""
    if not registry.resources.is_open(OrchestratorHandle):
        return
    handle = registry.resources.peek(OrchestratorHandle)
    if handle.health is None:
        return  # a remote daemon runs its own workflows
    for state in (WorkflowState.PENDING, WorkflowState.RUNNING, WorkflowState.ROLLING_BACK):
        for wf in (await handle.api.list(state=state, limit=500)).workflows:
            tell(
                f"running workflow {wf.id} ({wf.name}) to the end here, as no platform runs; "
                "Ctrl-C stops it (it resumes on the next start)"
            )
            await handle.api.wait(wf.id, None)


__all__ = [
    "build_registry",
    "finish_started_work",
    "local_principal",
    "open_orchestrator",
    "rate_limits",
]
