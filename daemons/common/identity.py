"""Users, their roles, API keys and session records, in SurrealDB tables `user`, `api_key`
and `session`.

An API key reads `prvng_<key id>_<secret>` like the bootstrap key; only its SHA-256 is
stored (the secret is 256-bit random, so a fast hash is enough), and it is shown once.
A key acts as its user with the user's *current* roles, narrowed by the key's scopes.
Every change that can take access away bumps `generation`, which empties the
authenticator's cache, so a revoked key or disabled user stops working at once.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from daemons.common.state import StateStore
from registry.errors import Conflict, InvalidInput, NotFound
from registry.principal import Principal
from registry.timestamps import utc_now_iso

BUILTIN_ROLES = ("viewer", "operator", "approver", "admin")
ROLE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
BOOTSTRAP_USER = "admin"
"""The bootstrap key's principal; it lives in `credentials/`, not in the store."""
KEY_PREFIX = "prvng"

USERS, KEYS, SESSIONS = "user", "api_key", "session"


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def parse_key_id(key: str) -> str | None:
    """The key id of a well-formed API key, else None."""
    parts = key.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != 12:
        return None
    return parts[1]


def new_key() -> tuple[str, str]:
    """A fresh `(key id, key)`."""
    key_id = secrets.token_hex(6)
    return key_id, f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"


def check_role(role: str) -> str:
    if not ROLE_NAME.match(role):
        raise InvalidInput(
            f"role {role!r} must be 1-32 of a-z, 0-9, '-', '_' starting with a letter",
            details={"role": role},
        )
    return role


def _expired(record: dict[str, Any], now: datetime) -> bool:
    expires = record.get("expires_at")
    return bool(expires) and datetime.fromisoformat(str(expires)) <= now


def _public_key(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in {"id", "hash"}}


class IdentityStore:
    """Users, keys and sessions over the state store (opened on first use)."""

    def __init__(self, state: Callable[[], Awaitable[StateStore]]) -> None:
        self._state = state
        self.generation = 0

    def _changed(self) -> None:
        self.generation += 1

    # -- users -----------------------------------------------------------------------

    async def create_user(self, name: str, roles: list[str], by: str) -> dict[str, Any]:
        if name == BOOTSTRAP_USER:
            raise Conflict(f"user {name!r} is the bootstrap principal", details={"user": name})
        record = {
            "name": name,
            "roles": sorted({check_role(r) for r in roles}),
            "disabled": False,
            "created_at": utc_now_iso(),
            "created_by": by,
        }
        store = await self._state()
        created = await store.create(USERS, name, record)
        return {k: v for k, v in created.items() if k != "id"}

    async def find_user(self, name: str) -> dict[str, Any] | None:
        record = await (await self._state()).get(USERS, name)
        return None if record is None else {k: v for k, v in record.items() if k != "id"}

    async def user(self, name: str) -> dict[str, Any]:
        record = await self.find_user(name)
        if record is None:
            raise NotFound(f"no user named {name!r}", details={"user": name})
        return record

    async def users(self) -> list[dict[str, Any]]:
        rows = await (await self._state()).query(f"SELECT * FROM {USERS} ORDER BY name")
        return [{k: v for k, v in row.items() if k != "id"} for row in rows]

    async def update_user(self, name: str, **fields: Any) -> dict[str, Any]:
        current = await self.user(name)
        updated = await (await self._state()).upsert(USERS, name, {**current, **fields})
        self._changed()
        return {k: v for k, v in updated.items() if k != "id"}

    # -- API keys --------------------------------------------------------------------

    async def create_key(
        self, user: str, name: str, scopes: list[str], ttl_s: int | None
    ) -> tuple[str, dict[str, Any]]:
        """A new key for `user`: the key itself (shown once) and its stored record."""
        key_id, key = new_key()
        expires = None
        if ttl_s is not None:
            expires = (datetime.now(UTC) + timedelta(seconds=ttl_s)).isoformat()
        record = {
            "key_id": key_id,
            "user": user,
            "name": name,
            "hash": key_hash(key),
            "scopes": sorted(set(scopes)),
            "created_at": utc_now_iso(),
            "expires_at": expires,
            "revoked_at": None,
            "last_used_at": None,
        }
        created = await (await self._state()).create(KEYS, key_id, record)
        return key, _public_key(created)

    async def keys(self, user: str | None) -> list[dict[str, Any]]:
        store = await self._state()
        if user is None:
            rows = await store.query(f"SELECT * FROM {KEYS} ORDER BY created_at")
        else:
            rows = await store.query(
                f"SELECT * FROM {KEYS} WHERE user = $user ORDER BY created_at", {"user": user}
            )
        return [_public_key(row) for row in rows]

    async def key(self, key_id: str) -> dict[str, Any]:
        record = await (await self._state()).get(KEYS, key_id)
        if record is None:
            raise NotFound(f"no API key with id {key_id!r}", details={"key_id": key_id})
        return _public_key(record)

    async def revoke_key(self, key_id: str) -> dict[str, Any]:
        store = await self._state()
        record = await store.get(KEYS, key_id)
        if record is None:
            raise NotFound(f"no API key with id {key_id!r}", details={"key_id": key_id})
        if not record.get("revoked_at"):
            record = await store.upsert(KEYS, key_id, {**record, "revoked_at": utc_now_iso()})
        self._changed()
        return _public_key(record)

    async def authenticate_key(self, credential: str) -> tuple[Principal, str | None] | None:
        """The key's principal and when it stops being valid, or None (unknown, wrong
        secret, revoked, expired, its user disabled)."""
        key_id = parse_key_id(credential)
        if key_id is None:
            return None
        store = await self._state()
        record = await store.get(KEYS, key_id)
        if record is None or not hmac.compare_digest(record["hash"], key_hash(credential.strip())):
            return None
        now = datetime.now(UTC)
        if record.get("revoked_at") or _expired(record, now):
            return None
        user = await self.find_user(record["user"])
        if user is None or user.get("disabled"):
            return None
        # Only this field, and only while the key is live: a revocation read and written
        # meanwhile is never undone by a stale copy of the record.
        await store.update_if(
            KEYS, key_id, {"last_used_at": utc_now_iso()}, field="revoked_at", expected=[None]
        )
        principal = Principal(
            id=user["name"],
            roles=frozenset(user["roles"]),
            kind="api_key",
            credential_id=key_id,
            scopes=frozenset(record.get("scopes") or ()),
        )
        return principal, record.get("expires_at")

    # -- sessions --------------------------------------------------------------------

    async def record_session(self, jti: str, user: str, expires_at: str) -> None:
        record = {"jti": jti, "user": user, "expires_at": expires_at, "revoked_at": None}
        await (await self._state()).create(SESSIONS, jti, record)

    async def revoke_session(self, jti: str) -> None:
        store = await self._state()
        record = await store.get(SESSIONS, jti) or {"jti": jti}
        await store.upsert(SESSIONS, jti, {**record, "revoked_at": utc_now_iso()})
        self._changed()

    async def session_active(self, jti: str) -> bool:
        """True for a session this platform issued and nobody revoked."""
        record = await (await self._state()).get(SESSIONS, jti)
        return record is not None and not record.get("revoked_at")
