"""Crashes, redeliveries, competing controllers and an unreachable orchestrator: every op
runs once, and none that JetStream acknowledged is lost."""

from __future__ import annotations

import asyncio
import socket
from collections import Counter

from nats.aio.client import Client

from daemons.common.state import StateStore
from daemons.controller import OpState, OrchestratorDispatcher
from daemons.controller.dispatch import RunState
from daemons.controller.ledger import Ledger
from daemons.keeper import Keeper
from daemons.ops import OpRequest
from daemons.orchestrator.engine.service import Orchestrator
from daemons.orchestrator.serving.client import OrchestratorClient
from ops.conftest import StartController
from ops.helpers import ALICE, noop_op, outcomes
from tests.waiting import until


class CountingDispatcher:
    """The real orchestrator dispatcher, counting submits per op, optionally dying (the
    controller task is cancelled: no ack, no ledger step after it) before or after one."""

    def __init__(self, inner: OrchestratorDispatcher, crash: str = "") -> None:
        self.inner = inner
        self.submits: Counter[str] = Counter()
        self.crash = crash

    async def submit(self, op_id: str, op: OpRequest) -> None:
        if self.crash == "before":
            self.crash = ""
            raise asyncio.CancelledError
        await self.inner.submit(op_id, op)
        self.submits[op_id] += 1
        if self.crash == "after":
            self.crash = ""
            raise asyncio.CancelledError

    async def outcome(self, op_id: str) -> RunState | None:
        return await self.inner.outcome(op_id)

    async def wait(self, op_id: str) -> RunState:
        return await self.inner.wait(op_id)


async def _states(state: StateStore, op_ids: list[str]) -> Counter[str]:
    ledger = Ledger(state)
    found: Counter[str] = Counter()
    for op_id in op_ids:
        record = await ledger.get(op_id)
        found[str(record["state"]) if record else "missing"] += 1
    return found


async def _all_succeeded(state: StateStore, op_ids: list[str]) -> bool:
    return (await _states(state, op_ids))[OpState.SUCCEEDED] == len(op_ids)


async def test_controller_dying_after_dispatch_before_ack_does_not_dispatch_twice(
    keeper: Keeper,
    nc: Client,
    state: StateStore,
    orchestrator: Orchestrator,
    start_controller: StartController,
) -> None:
    dispatcher = CountingDispatcher(OrchestratorDispatcher(orchestrator), crash="after")
    first = await start_controller(dispatcher)
    op_id = (await keeper.request(noop_op(labels={"env": "dev"}), ALICE)).op_id

    async def submitted() -> bool:
        return dispatcher.submits[op_id] == 1

    await until(submitted, what="the first dispatch")
    await first.stop()  # died without acking
    assert sum(first.counts.values()) == 0
    second = await start_controller(dispatcher)

    async def done() -> bool:
        return await _all_succeeded(state, [op_id]) and second.counts["ack"] == 1

    await until(done, what="the redelivered op to be acknowledged")
    assert dispatcher.submits == Counter({op_id: 1})
    assert len((await orchestrator.list()).workflows) == 1
    assert (await outcomes(nc.jetstream(), op_id)).count("succeeded") == 1


async def test_controller_dying_between_claim_and_submit_is_reconciled(
    keeper: Keeper,
    state: StateStore,
    orchestrator: Orchestrator,
    start_controller: StartController,
) -> None:
    dispatcher = CountingDispatcher(OrchestratorDispatcher(orchestrator), crash="before")
    first = await start_controller(dispatcher)
    op_id = (await keeper.request(noop_op(labels={"env": "dev"}), ALICE)).op_id

    async def claimed() -> bool:
        return (await _states(state, [op_id]))[OpState.DISPATCHED] == 1 and not dispatcher.crash

    await until(claimed, what="the claim")
    await first.stop()
    await start_controller(dispatcher)  # reconciles on start
    await until(lambda: _all_succeeded(state, [op_id]), what="the reconciled op")
    assert dispatcher.submits == Counter({op_id: 1})


async def test_two_controllers_on_one_consumer_dispatch_each_op_once(
    keeper: Keeper,
    state: StateStore,
    orchestrator: Orchestrator,
    start_controller: StartController,
) -> None:
    dispatcher = CountingDispatcher(OrchestratorDispatcher(orchestrator))
    one, two = await start_controller(dispatcher), await start_controller(dispatcher)
    decisions = await asyncio.gather(
        *(keeper.request(noop_op(f"web-{i}", labels={"env": "dev"}), ALICE) for i in range(200))
    )
    op_ids = [d.op_id for d in decisions]
    await until(lambda: _all_succeeded(state, op_ids), within_s=60, what="200 ops")
    assert sorted(dispatcher.submits) == sorted(op_ids)
    assert set(dispatcher.submits.values()) == {1}
    assert len((await orchestrator.list(limit=500)).workflows) == 200
    assert one.counts["ack"] > 0 and two.counts["ack"] > 0  # both took work
    assert one.counts["ack"] + two.counts["ack"] >= 200


async def test_unreachable_orchestrator_naks_then_dead_letters(
    keeper: Keeper, nc: Client, state: StateStore, start_controller: StartController
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = OrchestratorClient(f"http://127.0.0.1:{port}", "no-token", timeout_s=2)
    try:
        controller = await start_controller(OrchestratorDispatcher(client))
        op_id = (await keeper.request(noop_op(labels={"env": "dev"}), ALICE)).op_id

        async def dead() -> bool:
            dead_lettered = (await _states(state, [op_id]))[OpState.DEAD_LETTERED] == 1
            return dead_lettered and controller.counts["term"] == 1

        await until(dead, what="the op to be dead-lettered")
        max_deliver = controller.config.max_deliver
        assert controller.counts == Counter({"nak": max_deliver - 1, "term": 1})
        assert "dead_lettered" in await outcomes(nc.jetstream(), op_id)
    finally:
        await client.aclose()


async def test_orchestrator_back_before_max_deliver_runs_the_op_once(
    keeper: Keeper,
    state: StateStore,
    orchestrator: Orchestrator,
    start_controller: StartController,
) -> None:
    class DownTwice(CountingDispatcher):
        calls = 0

        async def submit(self, op_id: str, op: OpRequest) -> None:
            self.calls += 1
            if self.calls <= 2:
                from registry.errors import Unavailable

                raise Unavailable("orchestrator restarting")
            await super().submit(op_id, op)

    dispatcher = DownTwice(OrchestratorDispatcher(orchestrator))
    controller = await start_controller(dispatcher)
    op_id = (await keeper.request(noop_op(labels={"env": "dev"}), ALICE)).op_id

    async def done() -> bool:
        return await _all_succeeded(state, [op_id]) and controller.counts["ack"] == 1

    await until(done, what="the op after two naks")
    assert controller.counts == Counter({"nak": 2, "ack": 1})
    assert dispatcher.submits == Counter({op_id: 1})
