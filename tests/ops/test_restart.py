"""nats-server killed (SIGKILL) and restarted mid-flow: no op JetStream acknowledged is
lost, none runs twice, and what the outage refused is published again by the keeper."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from daemons.bus import NatsServer
from daemons.common.state import StateStore
from daemons.controller import OpState, OrchestratorDispatcher
from daemons.controller.ledger import Ledger
from daemons.keeper import Keeper
from daemons.ops import OpStatus
from daemons.orchestrator.engine.service import Orchestrator
from ops.conftest import StartController
from ops.helpers import ALICE, noop_op
from ops.test_faults import CountingDispatcher
from registry.errors import Unavailable
from tests.waiting import until


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """This module's tests kill their server: one each."""
    server = NatsServer(tmp_path / "nats")
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_no_acknowledged_op_is_lost_across_a_server_crash(
    nats_server: NatsServer,
    keeper: Keeper,
    state: StateStore,
    orchestrator: Orchestrator,
    start_controller: StartController,
) -> None:
    dispatcher = CountingDispatcher(OrchestratorDispatcher(orchestrator))
    await start_controller(dispatcher)
    acknowledged: list[str] = []
    refused: list[str] = []
    for i in range(60):
        if i == 20:
            nats_server.kill()
        if i == 22:
            nats_server.start()  # same port, same store
        try:
            decision = await keeper.request(noop_op(f"web-{i}", labels={"env": "dev"}), ALICE)
        except Unavailable as exc:
            if exc.details.get("op_id"):
                refused.append(str(exc.details["op_id"]))
            continue
        assert decision.status is OpStatus.PUBLISHED
        acknowledged.append(decision.op_id)
    assert len(acknowledged) >= 40 and refused  # the outage did refuse requests
    ledger = Ledger(state)

    def all_succeeded(op_ids: list[str]) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            for op_id in op_ids:
                record = await ledger.get(op_id)
                if record is None or record["state"] != OpState.SUCCEEDED:
                    return False
            return True

        return check

    await until(all_succeeded(acknowledged), within_s=60, what="every acknowledged op")
    republished = await keeper.republish()  # approved before the outage refused them
    assert set(republished) <= set(refused)
    everything = acknowledged + republished
    await until(all_succeeded(everything), within_s=60, what="the republished ops too")
    assert set(dispatcher.submits) == set(everything)
    assert set(dispatcher.submits.values()) == {1}
