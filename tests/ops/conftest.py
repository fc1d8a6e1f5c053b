"""Fixtures for the ops plane: one real nats-server per test module (free port, torn down
in finally), clean streams per test, an embedded SurrealDB, a real orchestrator, keeper
and controllers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from nats.aio.client import Client

from daemons.bus import NatsServer, connect
from daemons.common.settings import PROJECT_ROOT, Settings
from daemons.common.state import StateStore
from daemons.controller import (
    Controller,
    ControllerConfig,
    Dispatcher,
    OrchestratorDispatcher,
    TokenVerifier,
)
from daemons.keeper import Keeper, load_policy
from daemons.ops import KeyRing, verification_keys
from daemons.orchestrator.actions import load_actions
from daemons.orchestrator.engine.service import Orchestrator

FAST = ControllerConfig(
    ack_wait_s=1.0, max_deliver=4, nak_delays_s=[0.5, 0.5, 1.0], batch=64, fetch_timeout_s=0.2
)


@pytest.fixture
async def state() -> AsyncIterator[StateStore]:
    async with StateStore.open("mem://") as store:
        yield store


@pytest.fixture
async def orchestrator(settings: Settings, state: StateStore) -> AsyncIterator[Orchestrator]:
    orch = Orchestrator(settings, actions=load_actions(["noop", "sleep"]), state=state)
    await orch.start()
    try:
        yield orch
    finally:
        await orch.stop()


@pytest.fixture
def keyring(settings: Settings) -> KeyRing:
    return KeyRing(settings.keys_dir).load()


@pytest.fixture
def keeper(keyring: KeyRing, state: StateStore, nc: Client) -> Keeper:
    policy = load_policy(PROJECT_ROOT / "config" / "keeper_policy.ncl")
    return Keeper(policy=policy, keys=keyring, state=state, js=nc.jetstream())


@pytest.fixture
def verifier(keyring: KeyRing) -> TokenVerifier:
    return TokenVerifier(verification_keys(keyring.jwks()))


StartController = Callable[..., Awaitable[Controller]]


@pytest.fixture
async def start_controller(
    nats_server: NatsServer,
    nc: Client,
    state: StateStore,
    verifier: TokenVerifier,
    orchestrator: Orchestrator,
) -> AsyncIterator[StartController]:
    """Starts controllers, each on its own NATS connection; all stopped in finally."""
    started: list[tuple[Controller, Client]] = []

    async def start(
        dispatcher: Dispatcher | None = None, config: ControllerConfig = FAST
    ) -> Controller:
        own = await connect(nats_server.url, name="controller")
        controller = Controller(
            nc=own,
            state=state,
            verifier=verifier,
            dispatcher=dispatcher or OrchestratorDispatcher(orchestrator),
            config=config,
        )
        started.append((controller, own))
        await controller.start()
        return controller

    try:
        yield start
    finally:
        for controller, own in started:
            await controller.stop()
            await own.close()


@pytest.fixture
def policy_path() -> Path:
    return PROJECT_ROOT / "config" / "keeper_policy.ncl"
