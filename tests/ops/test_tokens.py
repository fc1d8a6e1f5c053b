"""Tokens the controller must refuse: each one `Term`, audited, and nothing dispatched.

Every attack starts from a genuine approval (the keeper's signer and key ring) and
changes one thing, so each test fails if that one check is missing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from nats.aio.client import Client

from daemons.bus import MSG_ID, pending_subject
from daemons.keeper import Signer
from daemons.ops import KeyRing, OpMessage, OpRequest, OpsClaims
from daemons.orchestrator.engine.service import Orchestrator
from ops.conftest import StartController
from ops.helpers import audit_events, noop_op
from tests.waiting import until


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict[str, object], claims: OpsClaims) -> str:
    return _b64(json.dumps(header).encode()) + "." + _b64(claims.model_dump_json().encode())


def _claims(signer: Signer, op: OpRequest, op_id: str, **changes: object) -> OpsClaims:
    claims = signer.claims(
        op_id, op, requester="alice", approvers=[], rule="dev", trace_id="t-attack"
    )
    return claims.model_copy(update=changes)


Attack = Callable[[KeyRing, Signer, OpRequest, str, Path], OpMessage]


def forged(keys: KeyRing, signer: Signer, op: OpRequest, op_id: str, tmp: Path) -> OpMessage:
    """Signed by another key that claims the real kid."""
    other = KeyRing(tmp / "other").load()
    _, other_key = other.signing_key()
    stolen = KeyRing(keys.directory)
    stolen._keys, stolen._current = {keys.current_kid: other_key}, keys.current_kid
    return OpMessage(token=Signer(stolen).sign(_claims(signer, op, op_id)), op=op)


def tampered(keys: KeyRing, signer: Signer, op: OpRequest, op_id: str, tmp: Path) -> OpMessage:
    """A genuine signature over claims someone edited afterwards (another approver)."""
    token = signer.sign(_claims(signer, op, op_id))
    header, _, signature = token.split(".")
    edited = _claims(signer, op, op_id, approvers=["mallory"])
    return OpMessage(token=f"{header}.{_b64(edited.model_dump_json().encode())}.{signature}", op=op)


def expired(keys: KeyRing, signer: Signer, op: OpRequest, op_id: str, tmp: Path) -> OpMessage:
    now = int(time.time())
    claims = _claims(signer, op, op_id, iat=now - 7200, nbf=now - 7200, exp=now - 60)
    return OpMessage(token=signer.sign(claims), op=op)


def not_yet_valid(keys: KeyRing, signer: Signer, op: OpRequest, op_id: str, tmp: Path) -> OpMessage:
    now = int(time.time())
    return OpMessage(token=signer.sign(_claims(signer, op, op_id, nbf=now + 600)), op=op)


def wrong_audience(
    keys: KeyRing, signer: Signer, op: OpRequest, op_id: str, tmp: Path
) -> OpMessage:
    return OpMessage(token=signer.sign(_claims(signer, op, op_id, aud="someone-else")), op=op)


def wrong_issuer(keys: KeyRing, signer: Signer, op: OpRequest, op_id: str, tmp: Path) -> OpMessage:
    return OpMessage(token=signer.sign(_claims(signer, op, op_id, iss="mallory")), op=op)


def alg_none(keys: KeyRing, signer: Signer, op: OpRequest, op_id: str, tmp: Path) -> OpMessage:
    header = {"alg": "none", "typ": "ops+jwt", "kid": keys.current_kid}
    return OpMessage(token=_unsigned(header, _claims(signer, op, op_id)) + ".", op=op)


def hs256_with_public_key(
    keys: KeyRing, signer: Signer, op: OpRequest, op_id: str, tmp: Path
) -> OpMessage:
    """The classic confusion: HMAC keyed with the (public) verification key."""
    _, private = keys.signing_key()
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "ops+jwt", "kid": keys.current_kid}
    signing_input = _unsigned(header, _claims(signer, op, op_id))
    mac = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
    return OpMessage(token=f"{signing_input}.{_b64(mac)}", op=op)


def unknown_kid(keys: KeyRing, signer: Signer, op: OpRequest, op_id: str, tmp: Path) -> OpMessage:
    stranger = Signer(KeyRing(tmp / "stranger").load())
    return OpMessage(token=stranger.sign(_claims(signer, op, op_id)), op=op)


def params_changed(
    keys: KeyRing, signer: Signer, op: OpRequest, op_id: str, tmp: Path
) -> OpMessage:
    token = signer.sign(_claims(signer, op, op_id))
    return OpMessage(token=token, op=op.model_copy(update={"params": {"name": "db-1"}}))


def plan_changed(keys: KeyRing, signer: Signer, op: OpRequest, op_id: str, tmp: Path) -> OpMessage:
    token = signer.sign(_claims(signer, op, op_id))
    workflow = {**op.plan.workflow, "tasks": [{"id": "evil", "action": "sleep"}]}
    plan = op.plan.model_copy(update={"workflow": workflow})
    return OpMessage(token=token, op=op.model_copy(update={"plan": plan}))


def target_changed(
    keys: KeyRing, signer: Signer, op: OpRequest, op_id: str, tmp: Path
) -> OpMessage:
    token = signer.sign(_claims(signer, op, op_id))
    target = op.target.model_copy(update={"labels": {"env": "prod"}})
    return OpMessage(token=token, op=op.model_copy(update={"target": target}))


def extra_claim(keys: KeyRing, signer: Signer, op: OpRequest, op_id: str, tmp: Path) -> OpMessage:
    """A well-signed token whose claims are not of the ops shape (an unknown member)."""
    import jwt

    kid, key = keys.signing_key()
    payload = {**_claims(signer, op, op_id).model_dump(mode="json"), "admin": True}
    token = jwt.encode(payload, key, algorithm="EdDSA", headers={"kid": kid, "typ": "ops+jwt"})
    return OpMessage(token=token, op=op)


ATTACKS = [
    forged,
    tampered,
    expired,
    not_yet_valid,
    wrong_audience,
    wrong_issuer,
    alg_none,
    hs256_with_public_key,
    unknown_kid,
    params_changed,
    plan_changed,
    target_changed,
    extra_claim,
]


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.__name__ for a in ATTACKS])
async def test_refused_token_is_terminated_audited_and_never_dispatched(
    attack: Attack,
    keyring: KeyRing,
    nc: Client,
    orchestrator: Orchestrator,
    start_controller: StartController,
    tmp_path: Path,
) -> None:
    controller = await start_controller()
    op = noop_op(labels={"env": "dev"})
    op_id = "op-" + "a" * 32
    message = attack(keyring, Signer(keyring), op, op_id, tmp_path)
    js = nc.jetstream()
    await js.publish(
        pending_subject(op.type), message.model_dump_json().encode(), headers={MSG_ID: op_id}
    )

    async def terminated() -> bool:
        return controller.counts["term"] == 1

    await until(terminated, what="the controller to terminate the message")
    assert dict(controller.counts) == {"term": 1}
    assert (await orchestrator.list()).workflows == []
    events = await audit_events(js)
    assert [e.outcome.value for e in events] == ["invalid_token"]
    assert events[0].reason


async def test_a_genuine_token_passes_the_same_path(
    keyring: KeyRing, nc: Client, orchestrator: Orchestrator, start_controller: StartController
) -> None:
    """The control for the attacks above: unchanged, the same message is dispatched."""
    controller = await start_controller()
    op = noop_op(labels={"env": "dev"})
    op_id = "op-" + "b" * 32
    signer = Signer(keyring)
    message = OpMessage(token=signer.sign(_claims(signer, op, op_id)), op=op)
    await nc.jetstream().publish(
        pending_subject(op.type), message.model_dump_json().encode(), headers={MSG_ID: op_id}
    )

    async def acked() -> bool:
        return controller.counts["ack"] == 1

    await until(acked, what="the genuine op to be dispatched")
    assert (await orchestrator.get(op_id)).id == op_id


async def test_replayed_jti_in_a_new_message_is_refused(
    keyring: KeyRing, nc: Client, orchestrator: Orchestrator, start_controller: StartController
) -> None:
    """The same signed op published again under another message id (past the stream's
    de-duplication) runs once: the second copy is a replay."""
    controller = await start_controller()
    op = noop_op(labels={"env": "dev"})
    op_id = "op-" + "c" * 32
    signer = Signer(keyring)
    body = OpMessage(token=signer.sign(_claims(signer, op, op_id)), op=op).model_dump_json()
    js = nc.jetstream()
    await js.publish(pending_subject(op.type), body.encode(), headers={MSG_ID: op_id})

    async def acked() -> bool:
        return controller.counts["ack"] == 1

    await until(acked, what="the first copy to be dispatched")
    await js.publish(pending_subject(op.type), body.encode(), headers={MSG_ID: "another-id"})

    async def terminated() -> bool:
        return controller.counts["term"] == 1

    await until(terminated, what="the replay to be terminated")
    assert len((await orchestrator.list()).workflows) == 1
    assert "replayed" in [e.outcome.value for e in await audit_events(js)]
