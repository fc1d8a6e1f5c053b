"""API keys and session tokens: what works, and every way one must stop working."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from daemons.common.identity import IdentityStore
from daemons.common.sessions import AUDIENCE, ISSUER
from daemons.common.settings import Settings
from daemons.common.state import StateStore
from registry import Principal, Registry


async def _ok(registry: Registry, tool: str, args: dict[str, Any], **who: Any) -> Any:
    env = await registry.invoke(tool, args, **who)
    assert env.ok, env.error
    return env.data


async def _code(registry: Registry, tool: str, args: dict[str, Any], key: str) -> str | None:
    env = await registry.invoke(tool, args, credential=key)
    return None if env.ok else str(env.error["code"])  # type: ignore[index]


async def _user_key(registry: Registry, owner: Principal, name: str, **key: Any) -> str:
    await _ok(registry, "user.create", {"name": name, "roles": ["operator"]}, principal=owner)
    created = await _ok(registry, "apikey.create", {"user": name, **key}, principal=owner)
    assert created["key"].startswith(f"prvng_{created['key_id']}_")
    return str(created["key"])


async def test_a_key_acts_as_its_user_and_is_stored_as_a_hash(
    registry: Registry, owner: Principal
) -> None:
    key = await _user_key(registry, owner, "alice")
    me = await _ok(registry, "identity.whoami", {}, credential=key)
    assert me["id"] == "alice" and me["roles"] == ["operator"] and me["kind"] == "api_key"
    store = await registry.resources.get(StateStore)
    rows = await store.select("api_key")
    assert key not in json.dumps(rows) and rows[0]["hash"]
    listed = await _ok(registry, "apikey.list", {}, credential=key)
    assert listed["keys"][0]["last_used_at"] and "key" not in listed["keys"][0]


async def test_revoked_expired_disabled_malformed_keys_are_refused(
    registry: Registry, owner: Principal
) -> None:
    key = await _user_key(registry, owner, "bob")
    assert await _code(registry, "identity.whoami", {}, key) is None
    key_id = key.split("_")[1]
    await _ok(registry, "apikey.revoke", {"key_id": key_id}, credential=key)
    assert await _code(registry, "identity.whoami", {}, key) == "unauthenticated"

    expiring = (await _ok(registry, "apikey.create", {"user": "bob"}, principal=owner))["key"]
    assert await _code(registry, "identity.whoami", {}, expiring) is None
    store = await registry.resources.get(StateStore)
    record = await store.get("api_key", expiring.split("_")[1])
    assert record is not None
    record["expires_at"] = "2000-01-01T00:00:00+00:00"
    await store.upsert("api_key", record["key_id"], record)
    (await registry.resources.get(IdentityStore)).generation += 1  # as any change does
    assert await _code(registry, "identity.whoami", {}, expiring) == "unauthenticated"

    live = (await _ok(registry, "apikey.create", {"user": "bob"}, principal=owner))["key"]
    await _ok(registry, "user.disable", {"name": "bob"}, principal=owner)
    assert await _code(registry, "identity.whoami", {}, live) == "unauthenticated"

    for bad in (
        "prvng_short_x",
        live[:-1] + ("A" if live[-1] != "A" else "B"),
        "x" * 5000,
        "a.b.c",
    ):
        assert await _code(registry, "identity.whoami", {}, bad) == "unauthenticated"


async def test_a_scoped_key_calls_only_its_scope(registry: Registry, owner: Principal) -> None:
    key = await _user_key(registry, owner, "carol", scopes=["server.*", "tools.list"])
    assert await _code(registry, "server.list", {}, key) is None
    assert await _code(registry, "workflow.list", {}, key) == "forbidden"
    names = {t["name"] for t in (await _ok(registry, "tools.list", {}, credential=key))["tools"]}
    assert "workflow.list" not in names and "server.list" in names


async def test_sessions_login_refresh_logout(registry: Registry, owner: Principal) -> None:
    key = await _user_key(registry, owner, "dave")
    session = await _ok(registry, "session.login", {"ttl_s": 60}, credential=key)
    token = session["token"]
    me = await _ok(registry, "identity.whoami", {}, credential=token)
    assert me["kind"] == "session" and me["id"] == "dave"
    assert await _code(registry, "session.login", {}, token) == "invalid_input"

    renewed = await _ok(registry, "session.refresh", {}, credential=token)
    assert await _code(registry, "identity.whoami", {}, token) == "unauthenticated"
    new = renewed["token"]
    await _ok(registry, "session.logout", {}, credential=new)
    assert await _code(registry, "identity.whoami", {}, new) == "unauthenticated"


async def test_forged_tampered_and_expired_tokens_are_refused(
    registry: Registry, owner: Principal, settings: Settings
) -> None:
    key = await _user_key(registry, owner, "erin")
    token = (await _ok(registry, "session.login", {}, credential=key))["token"]
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["roles"], claims["sub"] = ["admin"], "admin"
    raised = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    none_alg = jwt.encode(claims, key="", algorithm="none")
    other_key = jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA")
    now = int(time.time())
    stale = {**claims, "sub": "erin", "iat": now - 120, "exp": now - 60}
    pem = (settings.keys_dir / "session-ed25519.pem").read_bytes()
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    expired = jwt.encode(stale, load_pem_private_key(pem, None), algorithm="EdDSA")  # type: ignore[arg-type]
    wrong_aud = jwt.encode(
        {**stale, "exp": now + 60, "aud": "other"},
        load_pem_private_key(pem, None),
        "EdDSA",  # type: ignore[arg-type]
    )
    for bad in (f"{header}.{raised}.{signature}", none_alg, other_key, expired, wrong_aud):
        assert await _code(registry, "identity.whoami", {}, bad) == "unauthenticated", bad
    assert claims["iss"] == ISSUER and AUDIENCE in str(claims["aud"])
    assert (settings.keys_dir / "session-ed25519.pem").stat().st_mode & 0o777 == 0o600


async def test_listing_shows_only_what_a_role_may_call(
    registry: Registry, owner: Principal
) -> None:
    await _ok(registry, "user.create", {"name": "vic", "roles": ["viewer"]}, principal=owner)
    key = (await _ok(registry, "apikey.create", {"user": "vic"}, principal=owner))["key"]
    names = {t["name"] for t in (await _ok(registry, "tools.list", {}, credential=key))["tools"]}
    assert {"server.list", "identity.whoami", "apikey.create"} <= names
    assert not names & {"server.register", "role.assign", "user.create", "workflow.submit"}


async def test_policy_validate_names_the_problem(registry: Registry, owner: Principal) -> None:
    ok = await _ok(registry, "policy.validate", {}, principal=owner)
    assert ok == {"valid": True, "problems": []}
    text = 'permit (principal in Role::"x", action == Action::"server.nuke", resource);'
    bad = await _ok(registry, "policy.validate", {"policies": text}, principal=owner)
    assert not bad["valid"] and "server.nuke" in bad["problems"][0]["message"]


async def test_a_new_key_used_by_parallel_requests_authenticates_every_one(
    registry: Registry, owner: Principal
) -> None:
    """A dashboard's first page load sends its calls at once: each authentication records
    the key's use, and a write conflict between them must not fail a request (it did:
    `internal`, "read or write conflict")."""
    key = await _user_key(registry, owner, "carol")
    identities = await registry.resources.get(IdentityStore)
    for _ in range(5):
        identities.generation += 1  # no cached authentication: each call reads and writes
        codes = await asyncio.gather(
            *(_code(registry, "identity.whoami", {}, key) for _ in range(16))
        )
        assert codes == [None] * 16
