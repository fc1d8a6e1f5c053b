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
              ├─ Bus → Keeper, Controller → OpsHandle (lazy: the ops plane, see `provide_ops`)
              └─ HealthBoard        (registry, state, orchestrator, nats, keeper, controller)

The ops plane (docs/ops.md) opens on the first gated call. With `PRVNG_NATS_URL` unset
the platform runs nats-server with its store in `PRVNG_HOME/nats`; a one-shot process
(no platform) runs one with a throw-away store, and `finish_started_work` waits until
its controller has taken every op before the process exits.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from nats.aio.client import Client

from daemons.audit_mirror.daemon import AuditVerifier
from daemons.bus import PENDING_STREAM, NatsServer, connect
from daemons.common.audit_store import AuditStore
from daemons.common.authentication import PlatformAuthenticator
from daemons.common.authorization import CedarAuthorizer
from daemons.common.exposition import Exposition
from daemons.common.files import private_dir
from daemons.common.health import ComponentStatus, HealthBoard
from daemons.common.identity import IdentityStore
from daemons.common.keystore import KeyStore
from daemons.common.sessions import SessionSigner
from daemons.common.settings import Settings
from daemons.common.state import StateStore
from daemons.controller import Controller
from daemons.controller.ledger import Ledger
from daemons.controller.runtime import open_controller
from daemons.keeper import Keeper
from daemons.keeper.runtime import expiry_sweep, open_keeper
from daemons.ncl_sync import ConfigCache, NclSyncConfig, open_cache
from daemons.ops import OpsHandle
from daemons.orchestrator.model import WorkflowState
from daemons.orchestrator.protocol import OrchestratorHandle
from registry import JsonlAuditSink, Principal, Registry, Resources
from registry.audit import FanOutSink
from registry.errors import InvalidInput
from registry.ratelimit import Limit, TokenBucketLimiter, limits_from
from servers.telemetry import PlatformCollector
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


@dataclass(frozen=True, slots=True)
class Bus:
    """The NATS connection of this process, and the nats-server it started (if any)."""

    nc: Client
    url: str
    server: NatsServer | None = None


@asynccontextmanager
async def open_bus(settings: Settings, store_dir: Path | None) -> AsyncIterator[Bus]:
    """`PRVNG_NATS_URL`'s server, else a bundled nats-server on a free port with its store
    in `store_dir` (a throw-away directory when None)."""
    async with AsyncExitStack() as stack:
        server = None
        url = settings.nats_url or ""
        if not url:
            if store_dir is None:
                store_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="nats-")))
            server = NatsServer(store_dir)
            url = await asyncio.to_thread(server.start)
            stack.callback(server.stop)
        nc = await connect(url, name="prvng")
        stack.push_async_callback(nc.close)
        yield Bus(nc, url, server)


@asynccontextmanager
async def _keeper(settings: Settings, resources: Resources) -> AsyncIterator[Keeper]:
    state = await resources.get(StateStore)
    keeper = await open_keeper(settings, state, (await resources.get(Bus)).nc)
    async with expiry_sweep(keeper, settings.ops_expire_interval_s):
        yield keeper


@asynccontextmanager
async def _controller(settings: Settings, resources: Resources) -> AsyncIterator[Controller]:
    state = await resources.get(StateStore)
    bus = await resources.get(Bus)
    orchestrator = await resources.get(OrchestratorHandle)
    controller = await open_controller(settings, state, bus.nc, orchestrator.api)
    try:
        yield controller
    finally:
        await controller.stop()


@asynccontextmanager
async def _ops(resources: Resources) -> AsyncIterator[OpsHandle]:
    """The gate tools call: the keeper, with a controller in this process to execute."""
    keeper = await resources.get(Keeper)
    await resources.get(Controller)
    yield OpsHandle(keeper, Ledger(await resources.get(StateStore)))


def provide_ops(registry: Registry, settings: Settings, store_dir: Path | None) -> None:
    """Declare the ops plane's resources; `store_dir` is the bundled nats-server's store
    (None: a throw-away one, for a one-shot process). Call before they are opened."""
    resources = registry.resources
    resources.provide(Bus, lambda: open_bus(settings, store_dir))
    resources.provide(Keeper, lambda: _keeper(settings, resources))
    resources.provide(Controller, lambda: _controller(settings, resources))
    resources.provide(OpsHandle, lambda: _ops(resources))


DRAIN_TIMEOUT_S = 30.0


async def drain_ops(registry: Registry, timeout_s: float = DRAIN_TIMEOUT_S) -> None:
    """Wait until this process's controller has answered every op on the stream (a
    one-shot process's nats-server goes away with it). No-op when no controller ran."""
    resources = registry.resources
    if not (resources.is_open(Controller) and resources.is_open(Bus)):
        return
    js = resources.peek(Bus).nc.jetstream()
    durable = resources.peek(Controller).config.durable
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        info = await js.consumer_info(PENDING_STREAM, durable)
        if not info.num_pending and not info.num_ack_pending:
            return
        await asyncio.sleep(0.01)  # polled against the deadline above


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

    async def nats() -> ComponentStatus:
        if not resources.is_open(Bus):
            return ComponentStatus(True, "starts on first use")
        bus = resources.peek(Bus)
        where = "bundled nats-server" if bus.server is not None else "PRVNG_NATS_URL"
        return ComponentStatus(bus.nc.is_connected, where)

    async def keeper() -> ComponentStatus:
        if not resources.is_open(Keeper):
            return ComponentStatus(True, "starts on first use")
        return ComponentStatus(True, f"policy {len(resources.peek(Keeper).policy.rules)} rules")

    async def controller() -> ComponentStatus:
        if not resources.is_open(Controller):
            return ComponentStatus(True, "starts on first use")
        running = resources.peek(Controller).running
        return ComponentStatus(running, "pulling" if running else "stopped")

    board.add("registry", tools)
    board.add("state", state)
    board.add("orchestrator", orchestrator)
    board.add("nats", nats)
    board.add("keeper", keeper)
    board.add("controller", controller)
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
    provide_ops(registry, settings, None)
    resources.provide(ConfigCache, lambda: open_config_cache(settings))
    resources.put(HealthBoard, _health_board(registry))
    resources.put(Exposition, Exposition(PlatformCollector(registry)))
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
    await drain_ops(registry)
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
    "Bus",
    "build_registry",
    "drain_ops",
    "finish_started_work",
    "local_principal",
    "open_bus",
    "open_orchestrator",
    "provide_ops",
    "rate_limits",
]
