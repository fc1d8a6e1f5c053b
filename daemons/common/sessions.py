"""Session tokens: short-lived EdDSA (Ed25519) JWTs signed with a key under `keys/`.

The signing key is generated on first use (`keys/session-ed25519.pem`, 0600, dir 0700).
Verification pins the algorithm and checks signature, `exp`, `iss` and `aud`; the `jti`
is recorded in the identity store so logout (and refresh) revoke a token before it ends.
"""

from __future__ import annotations

import secrets
import threading
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from daemons.common.files import create_secret_file, file_lock, private_dir
from daemons.common.settings import Settings

ISSUER = "prvng"
AUDIENCE = "prvng-api"
ALGORITHM = "EdDSA"
DEFAULT_TTL_S = 900


def looks_like_token(credential: str) -> bool:
    return credential.count(".") == 2 and credential.startswith("eyJ")


class SessionSigner:
    """Issues and verifies session tokens with this home's session key."""

    def __init__(self, settings: Settings, ttl_s: int = DEFAULT_TTL_S) -> None:
        self._path = settings.keys_dir / "session-ed25519.pem"
        self._lock_path = settings.keys_dir / ".session.lock"
        self.ttl_s = ttl_s
        self._private: Ed25519PrivateKey | None = None
        self._public: Ed25519PublicKey | None = None
        self._guard = threading.Lock()

    def _load(self) -> tuple[Ed25519PrivateKey, Ed25519PublicKey]:
        with self._guard:
            if self._private is None or self._public is None:
                private_dir(self._path.parent)
                with file_lock(self._lock_path):
                    if not self._path.exists():
                        pem = Ed25519PrivateKey.generate().private_bytes(
                            serialization.Encoding.PEM,
                            serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption(),
                        )
                        create_secret_file(self._path, pem.decode())
                    key = serialization.load_pem_private_key(self._path.read_bytes(), None)
                if not isinstance(key, Ed25519PrivateKey):
                    raise ValueError(f"{self._path} does not hold an Ed25519 key")
                self._private, self._public = key, key.public_key()
            return self._private, self._public

    def issue(
        self, subject: str, roles: list[str], scopes: list[str], ttl_s: int | None = None
    ) -> tuple[str, dict[str, Any]]:
        """A new token and its claims (`jti`, `exp` ...)."""
        private, _ = self._load()
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": subject,
            "jti": secrets.token_hex(16),
            "iat": now,
            "exp": now + min(ttl_s or self.ttl_s, self.ttl_s),
            "roles": sorted(roles),
            "scopes": sorted(scopes),
        }
        return jwt.encode(claims, private, algorithm=ALGORITHM), claims

    def verify(self, token: str) -> dict[str, Any] | None:
        """The claims of a valid token, else None (bad signature, expired, wrong aud/iss)."""
        _, public = self._load()
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                public,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "jti", "sub", "aud", "iss"]},
            )
        except jwt.PyJWTError:
            return None
        return claims
