"""The audit mirror's SSH signing key and the allowed-signers file that trusts it.

An Ed25519 key in OpenSSH format, generated on first start (0600) with `cryptography`,
so no key tool is needed to create it. Git signs through `ssh-keygen -Y sign`, though,
so `ssh-keygen` (Debian: openssh-client) must be installed to commit or verify.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from daemons.common.files import atomic_write, private_dir
from registry.errors import Unavailable

PRINCIPAL = "audit-mirror@prvng"
"""The identity the allowed-signers file names (and the commits' committer e-mail)."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    """The private key file git signs with and the allowed-signers file verifiers trust."""

    private_key: Path
    allowed_signers: Path

    @property
    def public_key(self) -> Path:
        return self.private_key.with_name(self.private_key.name + ".pub")


def require_ssh_keygen() -> str:
    """The `ssh-keygen` git's SSH signing calls; `Unavailable` with the fix when missing."""
    found = shutil.which("ssh-keygen")
    if found is None:
        raise Unavailable(
            "ssh-keygen is not installed, and git signs and verifies audit commits with it: "
            "install OpenSSH's client tools (Debian/Ubuntu: apt-get install openssh-client)"
        )
    return found


def ensure_signing_key(keys_dir: Path, name: str = "audit-ssh-ed25519") -> SigningKey:
    """Load the key under `keys_dir`, creating it (0600) and its allowed-signers entry on
    first start. The allowed-signers file lives outside the repository it vouches for."""
    private_dir(keys_dir)
    key = SigningKey(keys_dir / name, keys_dir / f"{name}.allowed-signers")
    if not key.private_key.exists():
        private = Ed25519PrivateKey.generate()
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
        public = private.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
        atomic_write(key.public_key, public + f" {PRINCIPAL}\n".encode(), 0o644)
        atomic_write(key.private_key, pem, 0o600)
    if not key.allowed_signers.exists():
        public_line = key.public_key.read_text().split()
        atomic_write(
            key.allowed_signers,
            f'{PRINCIPAL} namespaces="git" {public_line[0]} {public_line[1]}\n'.encode(),
            0o644,
        )
    return key
