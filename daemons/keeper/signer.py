"""Approved op → compact JWS (`alg: EdDSA`, `typ`, `kid`) carrying `OpsClaims`.

Made with `cryptography`'s Ed25519 directly (what PyJWT does, without its per-call
overhead: the keeper signs every op); any JWS library reads it."""

from __future__ import annotations

import base64
import json
import time

from daemons.ops.keyring import KeyRing
from daemons.ops.model import ALGORITHM, AUDIENCE, ISSUER, TOKEN_TYPE, OpRequest, OpsClaims

TOKEN_TTL_S = 3600
"""How long a signed op may wait in the stream for a controller (covers redeliveries)."""


class Signer:
    def __init__(self, keys: KeyRing, *, ttl_s: int = TOKEN_TTL_S, issuer: str = ISSUER) -> None:
        self._keys = keys
        self.ttl_s = ttl_s
        self.issuer = issuer

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
        header = json.dumps(
            {"alg": ALGORITHM, "kid": kid, "typ": TOKEN_TYPE}, separators=(",", ":")
        )
        signing_input = f"{_b64(header.encode())}.{_b64(claims.model_dump_json().encode())}"
        return f"{signing_input}.{_b64(key.sign(signing_input.encode()))}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
