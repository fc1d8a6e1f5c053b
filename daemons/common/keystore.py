"""API keys, stored server-side only as SHA-256 hashes.

A key reads `prvng_<key id>_<secret>`; the id finds the record, a constant-time hash
comparison checks the secret. Keys are 256-bit random, so a fast hash is enough.
The first start creates the bootstrap admin key at `credentials/admin-api-key` (0600).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
from pathlib import Path
from typing import Any

from daemons.common.files import atomic_write_json, create_secret_file, file_lock
from daemons.common.settings import Settings
from registry.errors import Unauthenticated
from registry.principal import Principal
from registry.timestamps import utc_now_iso

KEY_PREFIX = "prvng"


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _parse(key: str) -> str | None:
    """The key id of a well-formed key, else None."""
    parts = key.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != 12:
        return None
    return parts[1]


class KeyStore:
    """The file-backed API key table (`credentials/api-keys.json`, 0600)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._path = settings.credentials_dir / "api-keys.json"
        self._lock = threading.Lock()
        self._records: dict[str, dict[str, Any]] | None = None
        self._mtime: float = -1.0

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            mtime = self._path.stat().st_mtime
        except FileNotFoundError:
            return {}
        if self._records is None or mtime != self._mtime:
            self._records = json.loads(self._path.read_text())
            self._mtime = mtime
        return self._records

    def create(self, principal_id: str, roles: list[str]) -> str:
        """Create a key and return it; only its hash is kept."""
        key_id = secrets.token_hex(6)
        key = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
        with self._lock:
            records = dict(self._load())
            records[key_id] = {
                "hash": _hash(key),
                "principal": principal_id,
                "roles": sorted(roles),
                "created_at": utc_now_iso(),
            }
            atomic_write_json(self._path, records)
            self._records = None
        return key

    async def authenticate(self, credential: str) -> Principal | None:
        """`Authenticator` over this file alone (a registry that needs no store)."""
        return self.check(credential)

    def check(self, credential: str) -> Principal | None:
        """The principal of a key in this file, else None."""
        key_id = _parse(credential)
        if key_id is None:
            return None
        record = self._load().get(key_id)
        if record is None or not hmac.compare_digest(record["hash"], _hash(credential.strip())):
            return None
        return Principal(id=record["principal"], roles=frozenset(record["roles"]))

    def ensure_admin_key(self) -> Path:
        """Create the bootstrap admin key on first start; its file is the owner's credential."""
        path = self._settings.admin_key_file
        with file_lock(self._settings.credentials_dir / ".lock"):
            if path.exists() and self.check(path.read_text()) is not None:
                return path
            key = self.create("admin", ["admin"])
            path.unlink(missing_ok=True)  # a stale key whose record is gone
            create_secret_file(path, key)
        return path

    def owner(self) -> Principal:
        """The principal of whoever can read the admin key file (in-process CLI, stdio MCP)."""
        path = self.ensure_admin_key()
        principal = self.check(path.read_text())
        if principal is None:
            raise Unauthenticated(f"the key in {path} is not valid; delete it and restart")
        return principal
