"""The keeper: keys and JWKS, four-eyes approvals, expiry, rejection, denial, publishing."""

from __future__ import annotations

import asyncio
import stat
import time

import jwt
import pytest
from nats.aio.client import Client

from daemons.bus import PENDING_STREAM
from daemons.common.settings import Settings
from daemons.common.state import StateStore
from daemons.controller import TokenVerifier
from daemons.keeper import Keeper, Policy, PolicyDef
from daemons.ops import Decision, KeyRing, OpMessage, OpStatus, require_published, verification_keys
from ops.helpers import ALICE, APPROVING_ALICE, BOB, CAROL, VIEWER, noop_op, outcomes
from registry.errors import Conflict, Forbidden, NotFound

PROD = {"env": "prod"}


def test_signing_key_is_generated_once_private_and_named_by_its_thumbprint(
    settings: Settings,
) -> None:
    first = KeyRing(settings.keys_dir).load()
    files = list(settings.keys_dir.glob("ops-signing-*.pem"))
    assert [f.name for f in files] == [f"ops-signing-{first.current_kid}.pem"]
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(settings.keys_dir.stat().st_mode) == 0o700
    assert KeyRing(settings.keys_dir).load().current_kid == first.current_kid
    jwk = first.jwks()["keys"][0]
    assert {k: jwk[k] for k in ("kty", "crv", "alg", "kid")} == {
        "kty": "OKP",
        "crv": "Ed25519",
        "alg": "EdDSA",
        "kid": first.current_kid,
    }
    assert "d" not in jwk  # the private part never leaves the directory


async def test_any_jose_library_verifies_a_token_from_the_jwks(
    keeper: Keeper, keyring: KeyRing
) -> None:
    decision = await keeper.request(noop_op(labels={"env": "dev"}), ALICE)
    token = decision.token or ""
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "EdDSA", "typ": "ops+jwt", "kid": keyring.current_kid}
    key = jwt.PyJWKSet.from_dict(keeper.jwks())[header["kid"]]
    claims = jwt.decode(token, key, algorithms=["EdDSA"], audience="prvng-controller")
    op = noop_op(labels={"env": "dev"})
    assert claims["params_digest"] == op.params_digest()
    assert claims["plan_digest"] == op.plan_digest()
    assert claims["exp"] > claims["nbf"] >= claims["iat"] - 1


async def test_rotation_keeps_old_tokens_verifiable(keeper: Keeper, keyring: KeyRing) -> None:
    op = noop_op(labels={"env": "dev"})
    old = await keeper.request(op, ALICE)
    old_kid = keyring.current_kid
    new_kid = keyring.rotate()
    new = await keeper.request(op, ALICE)
    assert new_kid != old_kid
    assert jwt.get_unverified_header(new.token or "")["kid"] == new_kid
    verifier = TokenVerifier(verification_keys(keyring.jwks()))
    for decision in (old, new):
        claims = verifier.verify(OpMessage(token=decision.token or "", op=op))
        assert claims.jti == decision.op_id
    assert [k["kid"] for k in keyring.jwks()["keys"]] == [new_kid, old_kid]


async def test_four_eyes_the_requester_never_approves_their_own_op(keeper: Keeper) -> None:
    pending = await keeper.request(noop_op(labels=PROD), APPROVING_ALICE)
    with pytest.raises(Forbidden, match="four-eyes"):
        await keeper.approve(pending.op_id, APPROVING_ALICE)
    with pytest.raises(Forbidden, match="roles"):
        await keeper.approve(pending.op_id, VIEWER)
    assert (await keeper.get(pending.op_id)).status is OpStatus.PENDING
    approved = await keeper.approve(pending.op_id, BOB)
    assert approved.status is OpStatus.PUBLISHED and approved.approvers == ["bob"]


@pytest.fixture
def two_eyes_keeper(keyring: KeyRing, state: StateStore, nc: Client) -> Keeper:
    policy = Policy(rules=[PolicyDef(name="two", decision=Decision.REQUIRE_APPROVAL, approvals=2)])
    return Keeper(policy=policy, keys=keyring, state=state, js=nc.jetstream())


async def test_two_approvals_take_two_distinct_approvers(two_eyes_keeper: Keeper) -> None:
    keeper = two_eyes_keeper
    pending = await keeper.request(noop_op(labels=PROD), ALICE)
    once = await keeper.approve(pending.op_id, BOB)
    assert once.status is OpStatus.PENDING and once.approvers == ["bob"]
    with pytest.raises(Conflict, match="already approved"):
        await keeper.approve(pending.op_id, BOB)
    done = await keeper.approve(pending.op_id, CAROL)
    assert done.status is OpStatus.PUBLISHED
    claims = jwt.decode(done.token or "", options={"verify_signature": False})
    assert claims["approvers"] == ["bob", "carol"]


async def test_concurrent_approvals_are_both_counted(two_eyes_keeper: Keeper) -> None:
    keeper = two_eyes_keeper
    pending = await keeper.request(noop_op(labels=PROD), ALICE)
    await asyncio.gather(keeper.approve(pending.op_id, BOB), keeper.approve(pending.op_id, CAROL))
    final = await keeper.get(pending.op_id)
    assert final.status is OpStatus.PUBLISHED
    assert sorted(final.approvers) == ["bob", "carol"]


async def test_a_pending_approval_expires(keeper: Keeper, nc: Client) -> None:
    pending = await keeper.request(noop_op(labels=PROD), ALICE)
    assert await keeper.expire() == []  # not yet
    assert await keeper.expire(now=time.time() + keeper.policy.approval_ttl_s + 1) == [
        pending.op_id
    ]
    with pytest.raises(Conflict, match="expired"):
        await keeper.approve(pending.op_id, BOB)
    assert await outcomes(nc.jetstream(), pending.op_id) == ["approval_required", "expired"]


async def test_a_rejected_op_cannot_be_approved(keeper: Keeper, nc: Client) -> None:
    pending = await keeper.request(noop_op(labels=PROD), ALICE)
    with pytest.raises(Forbidden):
        await keeper.reject(pending.op_id, VIEWER)
    rejected = await keeper.reject(pending.op_id, BOB, reason="not during the freeze")
    assert rejected.status is OpStatus.REJECTED and rejected.reason == "not during the freeze"
    with pytest.raises(Conflict, match="rejected"):
        await keeper.approve(pending.op_id, CAROL)
    assert await outcomes(nc.jetstream(), pending.op_id) == ["approval_required", "rejected"]
    info = await nc.jetstream().stream_info(PENDING_STREAM)
    assert info.state.messages == 0


async def test_a_denied_op_is_audited_and_never_published(keeper: Keeper, nc: Client) -> None:
    denied = await keeper.request(noop_op(provider="cloud", labels={"env": "stage"}), ALICE)
    assert (denied.status, denied.rule, denied.token) == (OpStatus.DENIED, "default-deny", None)
    with pytest.raises(Forbidden, match="denies"):
        require_published(denied)
    js = nc.jetstream()
    assert await outcomes(js, denied.op_id) == ["denied"]
    assert (await js.stream_info(PENDING_STREAM)).state.messages == 0
    with pytest.raises(NotFound):
        await keeper.get("op-" + "0" * 32)


async def test_publishing_again_stores_the_op_once(keeper: Keeper, nc: Client) -> None:
    decision = await keeper.request(noop_op(labels={"env": "dev"}), ALICE)
    await keeper.publish(decision.op_id)
    info = await nc.jetstream().stream_info(PENDING_STREAM)
    assert info.state.messages == 1
