"""The ops plane end to end: request → policy → signed → JetStream → controller → orchestrator."""

from __future__ import annotations

import jwt
from nats.aio.client import Client

from daemons.common.settings import Settings
from daemons.common.state import StateStore
from daemons.controller import open_controller
from daemons.controller.ledger import Ledger, OpState
from daemons.keeper import Keeper, open_keeper
from daemons.ops import OpStatus, require_published
from daemons.orchestrator.engine.service import Orchestrator
from daemons.orchestrator.model import WorkflowState
from ops.conftest import FAST, StartController
from ops.helpers import ALICE, BOB, noop_op, outcomes
from registry.errors import ApprovalRequired
from tests.waiting import until


async def _op_state(state: StateStore, op_id: str) -> str | None:
    record = await Ledger(state).get(op_id)
    return None if record is None else str(record["state"])


async def test_auto_approved_op_runs_once_and_is_audited(
    keeper: Keeper,
    nc: Client,
    state: StateStore,
    orchestrator: Orchestrator,
    start_controller: StartController,
) -> None:
    controller = await start_controller()
    decision = require_published(
        await keeper.request(noop_op(labels={"env": "dev"}), ALICE, trace_id="trace-1")
    )
    assert decision.rule == "dev"
    assert decision.token is not None
    claims = jwt.decode(decision.token, options={"verify_signature": False})
    assert claims["sub"] == "alice" and claims["jti"] == decision.op_id
    assert claims["trace_id"] == "trace-1"

    async def succeeded() -> bool:
        state_now = await _op_state(state, decision.op_id)
        return state_now == OpState.SUCCEEDED and controller.counts["ack"] == 1

    await until(succeeded, what="the op to succeed and be acknowledged")
    view = await orchestrator.get(decision.op_id)
    assert view.state is WorkflowState.SUCCEEDED
    assert dict(controller.counts) == {"ack": 1}
    js = nc.jetstream()

    async def audited() -> bool:
        return "succeeded" in await outcomes(js, decision.op_id)

    await until(audited, what="the success audit event")
    assert await outcomes(js, decision.op_id) == ["auto_approved", "succeeded"]


async def test_prod_op_waits_for_an_approver_then_runs(
    keeper: Keeper,
    nc: Client,
    state: StateStore,
    orchestrator: Orchestrator,
    start_controller: StartController,
) -> None:
    await start_controller()
    pending = await keeper.request(
        noop_op("db-1", labels={"env": "prod"}, op_type="server.delete", risk="destructive"),
        ALICE,
    )
    assert pending.status is OpStatus.PENDING and pending.token is None
    try:
        require_published(pending)
    except ApprovalRequired as exc:
        assert exc.details["op_id"] == pending.op_id
    else:
        raise AssertionError("a pending op must answer approval_required")
    assert await _op_state(state, pending.op_id) is None  # nothing reached the controller

    approved = await keeper.approve(pending.op_id, BOB)
    assert approved.status is OpStatus.PUBLISHED and approved.approvers == ["bob"]
    claims = jwt.decode(approved.token or "", options={"verify_signature": False})
    assert claims["approvers"] == ["bob"] and claims["sub"] == "alice"

    async def succeeded() -> bool:
        return await _op_state(state, pending.op_id) == OpState.SUCCEEDED

    await until(succeeded, what="the approved op to succeed")
    assert (await orchestrator.get(pending.op_id)).state is WorkflowState.SUCCEEDED


async def test_keeper_and_controller_built_from_settings_run_an_op(
    settings: Settings, nc: Client, state: StateStore, orchestrator: Orchestrator
) -> None:
    """`open_keeper` (shipped policy, keys generated in PRVNG_HOME/keys) and
    `open_controller` (the same key ring's public keys) agree without being told."""
    keeper = await open_keeper(settings, state, nc)
    controller = await open_controller(settings, state, nc, orchestrator, config=FAST)
    try:
        decision = require_published(await keeper.request(noop_op(), ALICE))
        assert decision.rule == "local-unlabelled"

        async def succeeded() -> bool:
            return await _op_state(state, decision.op_id) == OpState.SUCCEEDED

        await until(succeeded, what="the op to succeed")
        assert list(settings.keys_dir.glob("ops-signing-*.pem"))
    finally:
        await controller.stop()
