"""`GET /.well-known/jwks.json`: open, public keys only, and it verifies what the keeper signs."""

from __future__ import annotations

import httpx
import jwt

from daemons.common.settings import Settings
from daemons.keeper import Signer
from daemons.ops import KeyRing
from ops.helpers import noop_op
from registry import Registry
from servers.supervisor import serve


async def test_jwks_is_served_without_a_credential_and_verifies_a_token(
    registry: Registry, settings: Settings
) -> None:
    ring = KeyRing(settings.keys_dir).load()
    signer = Signer(ring)
    op = noop_op()
    claims = signer.claims(
        "op-" + "d" * 32, op, requester="alice", approvers=[], rule="dev", trace_id="t"
    )
    token = signer.sign(claims)
    async with serve(registry, settings) as url, httpx.AsyncClient(base_url=url) as anonymous:
        response = await anonymous.get("/.well-known/jwks.json")
        assert response.status_code == 200
        jwks = response.json()
        ring.rotate()
        rotated = (await anonymous.get("/.well-known/jwks.json")).json()
    assert all("d" not in key for key in jwks["keys"])
    key = jwt.PyJWKSet.from_dict(jwks)[ring.jwks()["keys"][1]["kid"]]
    decoded = jwt.decode(token, key, algorithms=["EdDSA"], audience="prvng-controller")
    assert decoded["jti"] == "op-" + "d" * 32
    assert len(rotated["keys"]) == 2  # the new key, and the old one still verifying
