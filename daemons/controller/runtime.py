"""A controller built from settings: verification keys from the keeper's key ring (the
same `PRVNG_HOME/keys/`, or a JWKS document fetched from `/.well-known/jwks.json`), the
streams made sure of, dispatching to the given orchestrator."""

from __future__ import annotations

from typing import Any

from nats.aio.client import Client

from daemons.bus import ensure_streams
from daemons.common.heap import freeze_startup_heap
from daemons.common.settings import Settings
from daemons.common.state import StateStore
from daemons.controller.dispatch import OrchestratorDispatcher
from daemons.controller.service import Controller, ControllerConfig
from daemons.controller.verify import TokenVerifier
from daemons.ops.keyring import KeyRing, verification_keys
from daemons.orchestrator.protocol import OrchestratorAPI


async def open_controller(
    settings: Settings,
    state: StateStore,
    nc: Client,
    orchestrator: OrchestratorAPI,
    *,
    jwks: dict[str, Any] | None = None,
    config: ControllerConfig | None = None,
) -> Controller:
    """Started (consumer joined, stale ops reconciled, pulling); `stop()` it."""
    await ensure_streams(nc.jetstream())
    keys = verification_keys(jwks if jwks is not None else KeyRing(settings.keys_dir).load().jwks())
    controller = Controller(
        nc=nc,
        state=state,
        verifier=TokenVerifier(keys),
        dispatcher=OrchestratorDispatcher(orchestrator, state),
        config=config,
    )
    await controller.start()
    freeze_startup_heap()
    return controller
