"""Strict verification of an approval token against the message that carries it.

Algorithm pinned to EdDSA (the header must say so too: no `none`, no HS256 keyed with a
public key), a known `kid`, the signature, exp/nbf with a small leeway, aud, iss, the
claims' exact shape, and the op in the message must be the op that was approved: same
type and target, and params and plan with the signed digests.

The compact JWS is checked here with `cryptography`'s Ed25519 (the keeper signs with
PyJWT): PyJWT's decoder tests every character of a token in Python, which was a large
share of the controller's CPU per op; the checks and their order are the same.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
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

LEEWAY_S = 5
_B64URL = re.compile(r"[A-Za-z0-9_-]+")


class TokenRefused(Exception):
    """The token (or the op next to it) is not one the keeper approved as it stands."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _segments(token: str) -> tuple[dict[str, Any], bytes, bytes, bytes]:
    """Header, signing input, payload and signature of a compact JWS: three unpadded
    base64url segments, the header a JSON object."""
    segments = token.split(".")
    if len(segments) != 3 or not all(_B64URL.fullmatch(part) for part in segments):
        raise TokenRefused("not a compact JWS (three base64url segments)")
    try:
        header = json.loads(_b64decode(segments[0]))
        payload, signature = _b64decode(segments[1]), _b64decode(segments[2])
    except (ValueError, binascii.Error):
        raise TokenRefused("not a compact JWS: unreadable segment") from None
    if not isinstance(header, dict):
        raise TokenRefused("not a compact JWS: the header is not an object")
    return header, f"{segments[0]}.{segments[1]}".encode(), payload, signature


class TokenVerifier:
    def __init__(
        self,
        keys: Mapping[str, Ed25519PublicKey],
        *,
        issuer: str = ISSUER,
        audience: str = AUDIENCE,
        leeway_s: float = LEEWAY_S,
    ) -> None:
        self._keys = dict(keys)
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
        """The JWS checked in the order a verifier must: the header names EdDSA, the type
        and a known key; the Ed25519 signature over the signing input; only then the
        payload is read: the exact `OpsClaims` shape (every registered claim required),
        `aud` (one string, equal), `iss`, `exp`/`nbf`/`iat` with the leeway."""
        header, signing_input, payload, signature = _segments(token)
        if header.get("alg") != ALGORITHM:
            raise TokenRefused(f"algorithm {header.get('alg')!r} is not {ALGORITHM}")
        if header.get("typ") != TOKEN_TYPE:
            raise TokenRefused(f"token type {header.get('typ')!r} is not {TOKEN_TYPE}")
        key = self._keys.get(str(header.get("kid")))
        if key is None:
            raise TokenRefused(f"unknown signing key {header.get('kid')!r}")
        try:
            key.verify(signature, signing_input)
        except InvalidSignature:
            raise TokenRefused("InvalidSignatureError: Signature verification failed") from None
        try:
            claims = OpsClaims.model_validate_json(payload, strict=True)
        except ValidationError as exc:
            raise TokenRefused(f"claims not of the ops shape: {exc.errors()[0]['msg']}") from None
        if claims.aud != self.audience:
            raise TokenRefused(f"audience {claims.aud!r} is not {self.audience!r}")
        if claims.iss != self.issuer:
            raise TokenRefused(f"issuer {claims.iss!r} is not {self.issuer!r}")
        now = time.time()
        if claims.exp <= now - self.leeway_s:
            raise TokenRefused("ExpiredSignatureError: Signature has expired")
        if claims.nbf > now + self.leeway_s or claims.iat > now + self.leeway_s:
            raise TokenRefused("ImmatureSignatureError: The token is not yet valid")
        return claims
