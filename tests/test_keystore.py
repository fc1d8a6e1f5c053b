"""API keys: the bootstrap key, hashing at rest, strict parsing."""

from __future__ import annotations

import json

from daemons.common.keystore import KeyStore
from daemons.common.settings import Settings


def test_bootstrap_key_is_private_and_stored_only_as_hash(
    settings: Settings, keystore: KeyStore
) -> None:
    path = keystore.ensure_admin_key()
    key = path.read_text().strip()
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert oct(settings.credentials_dir.stat().st_mode & 0o777) == "0o700"
    table = (settings.credentials_dir / "api-keys.json").read_text()
    assert key not in table and key.split("_", 2)[2] not in table
    assert json.loads(table)[key.split("_")[1]]["roles"] == ["admin"]
    principal = keystore.check(key)
    assert principal is not None and principal.roles == frozenset({"admin"})


def test_bootstrap_key_is_created_once(keystore: KeyStore, settings: Settings) -> None:
    first = keystore.ensure_admin_key().read_text()
    second = KeyStore(settings).ensure_admin_key().read_text()
    assert first == second


def test_malformed_and_unknown_keys_fail(keystore: KeyStore) -> None:
    keystore.ensure_admin_key()
    for bad in ["", "Bearer x", "prvng_", "prvng_abc_def", "other_0123456789ab_secret"]:
        assert keystore.check(bad) is None


def test_new_keys_carry_their_roles(keystore: KeyStore) -> None:
    key = keystore.create("ci-bot", ["operator"])
    principal = keystore.check(key)
    assert principal is not None
    assert principal.id == "ci-bot" and principal.roles == frozenset({"operator"})
