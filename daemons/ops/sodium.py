"""PyJWT with its EdDSA (Ed25519) signatures made by libsodium (PyNaCl).

PyJWT still does all of JOSE (parsing, the header, the claims' checks); only the
signature primitive changes: libsodium verifies an Ed25519 signature in about half the
time OpenSSL takes through `cryptography` (47 µs against 96 µs here), and the controller
verifies one per op. Tokens are the same bytes either way (Ed25519 is deterministic), so
any JOSE library verifies ours and we verify theirs (tests/ops/test_tokens.py,
tests/ops/test_keeper.py).
"""

from __future__ import annotations

from typing import Any, NoReturn, cast

import jwt
import nacl.exceptions
import nacl.signing
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt.algorithms import Algorithm

ALGORITHM = "EdDSA"

_RAW = serialization.Encoding.Raw


def signing_key(key: Ed25519PrivateKey) -> nacl.signing.SigningKey:
    return nacl.signing.SigningKey(
        key.private_bytes(_RAW, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    )


def verify_key(key: Ed25519PublicKey) -> nacl.signing.VerifyKey:
    return nacl.signing.VerifyKey(key.public_bytes(_RAW, serialization.PublicFormat.Raw))


class SodiumEdDSA(Algorithm):
    """`EdDSA` over Ed25519 keys held as PyNaCl keys (nothing else is accepted)."""

    def prepare_key(self, key: Any) -> nacl.signing.SigningKey | nacl.signing.VerifyKey:
        if not isinstance(key, nacl.signing.SigningKey | nacl.signing.VerifyKey):
            raise jwt.InvalidKeyError("an Ed25519 key as a PyNaCl SigningKey or VerifyKey")
        return key

    def sign(self, msg: bytes, key: nacl.signing.SigningKey) -> bytes:
        if not isinstance(key, nacl.signing.SigningKey):
            raise jwt.InvalidKeyError("signing takes a private (SigningKey) key")
        return key.sign(msg).signature

    def verify(self, msg: bytes, key: nacl.signing.VerifyKey, sig: bytes) -> bool:
        if not isinstance(key, nacl.signing.VerifyKey):
            return False
        try:
            key.verify(msg, sig)
        except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
            return False
        return True

    @staticmethod
    def to_jwk(key_obj: Any, as_dict: bool = False) -> NoReturn:
        raise NotImplementedError("the keyring publishes the JWKS (daemons.ops.keyring)")

    @staticmethod
    def from_jwk(jwk: Any) -> NoReturn:
        raise NotImplementedError("the keyring reads the JWKS (daemons.ops.keyring)")


class SodiumJWT(jwt.PyJWT):
    """`jwt.PyJWT` that knows one algorithm, `EdDSA` by libsodium: a token naming any other
    (`none`, HS256 keyed with a public key, ...) is refused before any key is used."""

    def __init__(self) -> None:
        super().__init__()
        jws = jwt.PyJWS(algorithms=[])
        jws.register_algorithm(ALGORITHM, SodiumEdDSA())
        self._jws = jws  # PyJWT offers no public way to give its PyJWT its own PyJWS

    # PyJWT's key types name `cryptography`'s classes only: cast once, here.

    def sign_token(
        self, claims: dict[str, Any], key: nacl.signing.SigningKey, headers: dict[str, Any]
    ) -> str:
        return self.encode(claims, cast(Any, key), algorithm=ALGORITHM, headers=headers)

    def verified_claims(
        self, token: str, key: nacl.signing.VerifyKey, **checks: Any
    ) -> dict[str, Any]:
        """`decode`'s checks (`jwt.PyJWTError` when one fails), the algorithm pinned."""
        return self.decode(token, cast(Any, key), algorithms=[ALGORITHM], **checks)
