"""The platform's authenticator: bootstrap key, stored API keys, session tokens.

Verified credentials are cached for a few seconds (keyed by their hash, never in clear),
and the whole cache is dropped whenever the identity store changes anything that can
take access away (revocation, disabling, roles), so a call right after a revoke fails.
"""

from __future__ import annotations

import hashlib
import time
from datetime import datetime

from daemons.common.identity import BOOTSTRAP_USER, IdentityStore
from daemons.common.keystore import KeyStore
from daemons.common.sessions import SessionSigner, looks_like_token
from registry.principal import Principal

CACHE_TTL_S = 5.0
_MAX_ENTRIES = 4096


def _seconds_left(expires_at: str | None) -> float:
    if not expires_at:
        return CACHE_TTL_S
    return datetime.fromisoformat(expires_at).timestamp() - time.time()


class PlatformAuthenticator:
    """`Authenticator` over the bootstrap key file, the identity store and the signer."""

    def __init__(self, keystore: KeyStore, identities: IdentityStore, signer: SessionSigner):
        self._keystore = keystore
        self._identities = identities
        self._signer = signer
        self._cache: dict[str, tuple[Principal, float]] = {}
        self._generation = identities.generation

    async def authenticate(self, credential: str) -> Principal | None:
        if self._generation != self._identities.generation:
            self._cache.clear()
            self._generation = self._identities.generation
        digest = hashlib.sha256(credential.encode()).hexdigest()
        hit = self._cache.get(digest)
        now = time.monotonic()
        if hit is not None and hit[1] > now:
            return hit[0]
        principal, valid_s = await self._verify(credential.strip())
        if principal is not None and valid_s > 0:
            if len(self._cache) >= _MAX_ENTRIES:
                self._cache.clear()
            self._cache[digest] = (principal, now + min(CACHE_TTL_S, valid_s))
        return principal

    async def _verify(self, credential: str) -> tuple[Principal | None, float]:
        bootstrap = self._keystore.check(credential)
        if bootstrap is not None:
            return bootstrap, CACHE_TTL_S
        if looks_like_token(credential):
            return await self._session(credential)
        found = await self._identities.authenticate_key(credential)
        if found is None:
            return None, 0.0
        principal, expires_at = found
        return principal, _seconds_left(expires_at)

    async def _session(self, token: str) -> tuple[Principal | None, float]:
        claims = self._signer.verify(token)
        if claims is None or not await self._identities.session_active(claims["jti"]):
            return None, 0.0
        subject = str(claims["sub"])
        roles = frozenset(str(r) for r in claims.get("roles") or ())
        if subject != BOOTSTRAP_USER:
            user = await self._identities.find_user(subject)
            if user is None or user.get("disabled"):
                return None, 0.0
            roles = frozenset(user["roles"])  # the user's current roles, not the login's
        principal = Principal(
            id=subject,
            roles=roles,
            kind="session",
            credential_id=str(claims["jti"]),
            scopes=frozenset(str(s) for s in claims.get("scopes") or ()),
        )
        return principal, float(claims["exp"]) - time.time()
