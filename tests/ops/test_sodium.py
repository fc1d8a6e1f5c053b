"""PyJWT with libsodium's Ed25519 (`daemons.ops.sodium`) makes and reads the very tokens
stock PyJWT with `cryptography` does, and knows no other algorithm."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from daemons.ops import KeyRing
from daemons.ops.sodium import SodiumJWT, signing_key, verify_key

AUDIENCE = "prvng-controller"
CLAIMS = {"sub": "alice", "aud": AUDIENCE, "exp": 4_102_444_800}


def test_tokens_are_the_bytes_stock_pyjwt_makes_and_read_both_ways(tmp_path: Path) -> None:
    kid, key = KeyRing(tmp_path).load().signing_key()
    headers = {"kid": kid, "typ": "ops+jwt"}
    ours = SodiumJWT().sign_token(CLAIMS, signing_key(key), headers)
    stock = jwt.encode(CLAIMS, key, algorithm="EdDSA", headers=headers)
    assert ours == stock  # Ed25519 is deterministic
    decoded = jwt.decode(ours, key.public_key(), algorithms=["EdDSA"], audience=AUDIENCE)
    assert decoded == CLAIMS
    read = SodiumJWT().verified_claims(stock, verify_key(key.public_key()), audience=AUDIENCE)
    assert read == CLAIMS


def test_a_token_of_another_algorithm_or_a_bad_signature_is_refused(tmp_path: Path) -> None:
    _, key = KeyRing(tmp_path).load().signing_key()
    public = key.public_key()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    hs256 = jwt.encode(CLAIMS, raw, algorithm="HS256")  # keyed with the public key
    with pytest.raises(jwt.InvalidAlgorithmError):
        SodiumJWT().verified_claims(hs256, verify_key(public), audience=AUDIENCE)
    token = SodiumJWT().sign_token(CLAIMS, signing_key(key), {})
    head, body, signature = token.split(".")
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    with pytest.raises(jwt.InvalidSignatureError):
        SodiumJWT().verified_claims(f"{head}.{body}.{flipped}", verify_key(public), audience="x")
    stranger = KeyRing(tmp_path / "stranger").load().signing_key()[1].public_key()
    with pytest.raises(jwt.InvalidSignatureError):
        SodiumJWT().verified_claims(token, verify_key(stranger), audience=AUDIENCE)
