"""Strict verification of an approval token against the message that carries it.

Algorithm pinned to EdDSA (the header must say so too: no `none`, no HS256 keyed with a
public key), a known `kid`, the signature, exp/nbf with a small leeway, aud, iss, the
claims' exact shape, and the op in the message must be the op that was approved: same
type and target, and params and plan with the signed digests.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any

import jwt
import nacl.signing
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from daemons.ops.model import (
    ALGORITHM,
    AUDIENCE,
    ISSUER,
    TOKEN_TYPE,
    OpMessage,
    OpRequest,
    OpsClaims,
)
from daemons.ops.sodium import SodiumJWT, verify_key

LEEWAY_S = 5
_REQUIRED = ["iss", "sub", "aud", "jti", "iat", "nbf", "exp"]
_B64URL = re.compile(r"[A-Za-z0-9_-]+")


class TokenRefused(Exception):
    """The token (or the op next to it) is not one the keeper approved as it stands."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _header(token: str) -> dict[str, Any]:
    """The protected header, only to pick the key: PyJWT then parses and checks the whole
    token (read once here rather than twice through `get_unverified_header`)."""
    segments = token.split(".")
    if len(segments) != 3 or not _B64URL.fullmatch(segments[0]):
        raise TokenRefused("not a compact JWS (three base64url segments)")
    try:
        header = json.loads(base64.urlsafe_b64decode(segments[0] + "=" * (-len(segments[0]) % 4)))
    except (ValueError, binascii.Error):
        raise TokenRefused("not a compact JWS: unreadable header") from None
    if not isinstance(header, dict):
        raise TokenRefused("not a compact JWS: the header is not an object")
    return header


class TokenVerifier:
    def __init__(
        self,
        keys: Mapping[str, Ed25519PublicKey],
        *,
        issuer: str = ISSUER,
        audience: str = AUDIENCE,
        leeway_s: float = LEEWAY_S,
    ) -> None:
        self._keys: dict[str, nacl.signing.VerifyKey] = {
            kid: verify_key(key) for kid, key in keys.items()
        }
        self._jwt = SodiumJWT()
        self.issuer = issuer
        self.audience = audience
        self.leeway_s = leeway_s

    def verify(self, message: OpMessage) -> OpsClaims:
        """The token's claims, once the op beside it is the one approved. For a reference
        (`OpRef`) the digests it names are checked here, the bodies fetched by them when
        they are hashed (`daemons.ops.bodies`)."""
        claims = self._claims(message.token)
        op = message.op or message.ref
        if op is None or (message.op is not None and message.ref is not None):
            raise TokenRefused("the message carries no op, or two")
        if claims.op_type != op.type or claims.target != op.target:
            raise TokenRefused("the op's type or target is not the one approved")
        params, plan = (
            (op.params_digest(), op.plan_digest())
            if isinstance(op, OpRequest)
            else (op.params_digest, op.plan_digest)
        )
        if claims.params_digest != params:
            raise TokenRefused("the op's params changed after approval")
        if claims.plan_digest != plan:
            raise TokenRefused("the op's plan changed after approval")
        return claims

    def _claims(self, token: str) -> OpsClaims:
        header = _header(token)
        if header.get("alg") != ALGORITHM:
            raise TokenRefused(f"algorithm {header.get('alg')!r} is not {ALGORITHM}")
        if header.get("typ") != TOKEN_TYPE:
            raise TokenRefused(f"token type {header.get('typ')!r} is not {TOKEN_TYPE}")
        key = self._keys.get(str(header.get("kid")))
        if key is None:
            raise TokenRefused(f"unknown signing key {header.get('kid')!r}")
        try:
            payload = self._jwt.verified_claims(
                token,
                key,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": _REQUIRED, "strict_aud": True},
            )
        except jwt.PyJWTError as exc:
            raise TokenRefused(f"{type(exc).__name__}: {exc}") from None
        try:
            return OpsClaims.model_validate(payload)
        except ValidationError as exc:
            raise TokenRefused(f"claims not of the ops shape: {exc.errors()[0]['msg']}") from None
