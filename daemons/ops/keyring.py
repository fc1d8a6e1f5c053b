"""The keeper's Ed25519 signing keys under `PRVNG_HOME/keys/`, and their JWKS.

A key is generated on first start (PKCS#8 PEM, 0600) and named by its RFC 7638 JWK
thumbprint, its `kid`. `rotate()` makes a new key current; older keys stay in the
directory, so tokens they signed still verify until they expire. `jwks()` is the
document the HTTP tier serves at `/.well-known/jwks.json`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt import PyJWK, PyJWKError

from daemons.common.files import atomic_write, create_secret_file, file_lock, private_dir
from registry.errors import InvalidInput

PREFIX = "ops-signing-"
CURRENT = "ops-signing.current"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_jwk(key: Ed25519PublicKey) -> dict[str, str]:
    x = _b64url(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))
    thumbprint = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"))
    kid = _b64url(hashlib.sha256(thumbprint.encode()).digest())
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "use": "sig", "alg": "EdDSA"}


def verification_keys(jwks: dict[str, Any]) -> dict[str, Ed25519PublicKey]:
    """`kid` → public key, from a JWKS document; only OKP/Ed25519 keys are accepted."""
    keys: dict[str, Ed25519PublicKey] = {}
    for jwk in jwks.get("keys", []):
        if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or not jwk.get("kid"):
            raise InvalidInput("a verification key must be an OKP/Ed25519 JWK with a kid")
        try:
            key = PyJWK(jwk, algorithm="EdDSA").key
        except PyJWKError as exc:
            raise InvalidInput(f"unusable verification key {jwk.get('kid')!r}: {exc}") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise InvalidInput(f"verification key {jwk['kid']!r} is not an Ed25519 public key")
        keys[str(jwk["kid"])] = key
    return keys


class KeyRing:
    """Signing key (current) and verification keys (all kept) in one private directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._keys: dict[str, Ed25519PrivateKey] = {}
        self._current = ""

    def load(self) -> KeyRing:
        """Read the keys, generating the first one if there is none."""
        private_dir(self.directory)
        with file_lock(self.directory / ".ops-signing.lock"):
            self._read()
            if not self._current:
                self._current = self._generate()
                self._read()
        return self

    def rotate(self) -> str:
        """A new current signing key; the old ones keep verifying. Its kid."""
        with file_lock(self.directory / ".ops-signing.lock"):
            kid = self._generate()
            self._read()
        return kid

    @property
    def current_kid(self) -> str:
        return self._current

    def signing_key(self) -> tuple[str, Ed25519PrivateKey]:
        if not self._current:
            raise RuntimeError("KeyRing.load() first")
        return self._current, self._keys[self._current]

    def jwks(self) -> dict[str, Any]:
        """The public keys as a JWKS document (current first)."""
        ordered = sorted(self._keys, key=lambda kid: kid != self._current)
        return {"keys": [public_jwk(self._keys[kid].public_key()) for kid in ordered]}

    def _generate(self) -> str:
        key = Ed25519PrivateKey.generate()
        kid = public_jwk(key.public_key())["kid"]
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        create_secret_file(self.directory / f"{PREFIX}{kid}.pem", pem.decode().strip())
        atomic_write(self.directory / CURRENT, kid.encode() + b"\n")
        return kid

    def _read(self) -> None:
        keys: dict[str, Ed25519PrivateKey] = {}
        for path in sorted(self.directory.glob(f"{PREFIX}*.pem")):
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if isinstance(key, Ed25519PrivateKey):
                keys[public_jwk(key.public_key())["kid"]] = key
        current_file = self.directory / CURRENT
        current = current_file.read_text().strip() if current_file.exists() else ""
        self._keys = keys
        self._current = current if current in keys else ""
