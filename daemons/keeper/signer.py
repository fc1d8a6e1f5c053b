"""Approved op → compact JWS (PyJWT, `alg: EdDSA` by libsodium, `typ`, `kid`) carrying
`OpsClaims`."""

from __future__ import annotations

import time

import nacl.signing

from daemons.ops.keyring import KeyRing
from daemons.ops.model import AUDIENCE, ISSUER, TOKEN_TYPE, OpRequest, OpsClaims
from daemons.ops.sodium import SodiumJWT, signing_key

TOKEN_TTL_S = 3600
"""How long a signed op may wait in the stream for a controller (covers redeliveries)."""


class Signer:
    def __init__(self, keys: KeyRing, *, ttl_s: int = TOKEN_TTL_S, issuer: str = ISSUER) -> None:
        self._keys = keys
        self.ttl_s = ttl_s
        self.issuer = issuer
        self._jwt = SodiumJWT()
        self._sodium: tuple[str, nacl.signing.SigningKey] | None = None

    def claims(
        self,
        op_id: str,
        op: OpRequest,
        *,
        requester: str,
        approvers: list[str],
        rule: str,
        trace_id: str,
        digests: tuple[str, str] | None = None,
    ) -> OpsClaims:
        """`digests`: the params' and the plan's, when the caller has them already."""
        now = int(time.time())
        params_digest, plan_digest = digests or (op.params_digest(), op.plan_digest())
        return OpsClaims(
            iss=self.issuer,
            sub=requester,
            aud=AUDIENCE,
            jti=op_id,
            iat=now,
            nbf=now,
            exp=now + self.ttl_s,
            op_type=op.type,
            target=op.target,
            params_digest=params_digest,
            plan_digest=plan_digest,
            approvers=approvers,
            rule=rule,
            trace_id=trace_id,
        )

    def sign(self, claims: OpsClaims) -> str:
        kid, key = self._keys.signing_key()
        if self._sodium is None or self._sodium[0] != kid:  # converted once per key
            self._sodium = (kid, signing_key(key))
        return self._jwt.sign_token(
            claims.model_dump(mode="json"), self._sodium[1], {"kid": kid, "typ": TOKEN_TYPE}
        )
