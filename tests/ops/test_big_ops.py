"""An op over a megabyte on a nats-server with its default `max_payload` (1 MB, as an
external server has): its params and plan travel by digest in the object store, the
message stays small, and a body changed in the store is refused like a changed op."""

from __future__ import annotations

from collections.abc import Iterator

import jwt
import pytest
from nats.aio.client import Client

from daemons.bus import BODIES_BUCKET, PENDING_STREAM, NatsServer
from daemons.common.state import StateStore
from daemons.controller import TokenRefused, TokenVerifier
from daemons.controller.ledger import Ledger, OpState
from daemons.keeper import Keeper
from daemons.ops import OpPlan, OpRequest, OpTarget, require_published
from daemons.ops.bodies import BIG
from daemons.ops.model import OpMessage, OpRef
from daemons.orchestrator.engine.service import Orchestrator
from daemons.orchestrator.model import WorkflowState
from ops.conftest import StartController
from ops.helpers import ALICE, outcomes
from registry.canonical import canonical_json
from registry.errors import NotFound
from tests.waiting import until

ONE_MB = 1024 * 1024


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """nats-server with its default message limit (1 MB), not the bundled 8 MB."""
    server = NatsServer(tmp_path_factory.mktemp("nats"), max_payload="")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def big_op(name: str) -> OpRequest:
    """About 1.3 MB each of params and plan (25 labels of 50 kB), 200 no-op tasks."""
    labels = {f"pad{i}": f"{name}-{i}-" + "x" * 50_000 for i in range(25)}
    tasks = [{"id": f"t{i}", "action": "noop"} for i in range(200)]
    workflow = {"name": f"big {name}", "labels": labels, "tasks": tasks}
    return OpRequest(
        type="server.create",
        target=OpTarget(name=name, provider="local", labels={"env": "dev"}),
        params={"name": name, **workflow},
        plan=OpPlan(workflow=workflow),
    )


async def test_a_big_op_runs_on_a_server_with_the_default_max_payload(
    keeper: Keeper,
    nc: Client,
    state: StateStore,
    orchestrator: Orchestrator,
    start_controller: StartController,
) -> None:
    op = big_op("big-1")
    assert len(canonical_json(op.plan_value())) > ONE_MB
    controller = await start_controller()
    decision = require_published(await keeper.request(op, ALICE))

    async def succeeded() -> bool:
        record = await Ledger(state).get(decision.op_id)
        return record is not None and record["state"] == OpState.SUCCEEDED

    try:
        await until(succeeded, within_s=8, what="the big op to succeed")
    except AssertionError:
        print(
            "DBG",
            dict(controller.counts),
            await Ledger(state).get(decision.op_id),
            [
                (e.outcome, e.reason)
                for e in await __import__("ops.helpers").helpers.audit_events(nc.jetstream())
            ],
        )
        raise
    view = await orchestrator.get(decision.op_id)
    assert view.state is WorkflowState.SUCCEEDED and view.tasks_total == 200
    assert view.labels == op.plan.workflow["labels"]  # what was signed ran
    js = nc.jetstream()
    message = await js.get_msg(PENDING_STREAM, 1)
    assert message.data is not None and len(message.data) < BIG  # the bodies went beside it
    assert OpMessage.model_validate_json(message.data).ref is not None
    assert dict(controller.counts) == {"ack": 1}
    assert await outcomes(js, decision.op_id) == ["auto_approved", "succeeded"]


async def test_a_body_changed_in_the_store_is_refused(
    keeper: Keeper,
    nc: Client,
    orchestrator: Orchestrator,
    start_controller: StartController,
) -> None:
    op = big_op("big-2")
    decision = require_published(await keeper.request(op, ALICE))
    assert decision.token is not None
    claims = jwt.decode(decision.token, options={"verify_signature": False})
    tampered = op.plan_value()
    tampered["workflow"]["tasks"][3]["action"] = "sleep"
    bodies = await nc.jetstream().object_store(BODIES_BUCKET)
    await bodies.put(claims["plan_digest"], canonical_json(tampered))  # under the signed name

    controller = await start_controller()

    async def refused() -> bool:
        return controller.counts["term"] == 1

    await until(refused, what="the changed body to be refused")
    assert "invalid_token" in await outcomes(nc.jetstream())
    with pytest.raises(NotFound):
        await orchestrator.get(decision.op_id)


async def test_a_reference_to_other_bodies_than_the_signed_ones_is_refused(
    keeper: Keeper, verifier: TokenVerifier
) -> None:
    op = big_op("big-3")
    decision = require_published(await keeper.request(op, ALICE))
    assert decision.token is not None
    other = "sha256:" + "0" * 64
    for changed in ({"plan_digest": other}, {"params_digest": other}):
        ref = OpRef(
            type=op.type,
            target=op.target,
            params_digest=op.params_digest(),
            plan_digest=op.plan_digest(),
        ).model_copy(update=changed)
        with pytest.raises(TokenRefused, match="changed after approval"):
            verifier.verify(OpMessage(token=decision.token, ref=ref))
    with pytest.raises(TokenRefused, match="no op, or two"):
        verifier.verify(OpMessage(token=decision.token))
