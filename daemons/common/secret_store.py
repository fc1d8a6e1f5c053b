"""Named secrets under `PRVNG_HOME/secrets/`: one 0600 file per secret in a 0700 folder.

Task params reference a secret as `{"secret": "name"}` and the action reads it when it
runs, so a value never reaches a journal, a snapshot, an event, a view or an audit
record. Nothing here logs a value; listings give names and times only.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from daemons.common.files import atomic_write, private_dir
from daemons.common.settings import Settings
from registry.errors import InvalidInput, NotFound

SECRET_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
MAX_VALUE_BYTES = 64 * 1024
_NAME = re.compile(SECRET_NAME_PATTERN)


@dataclass(frozen=True, slots=True)
class SecretInfo:
    """What may be shown about a secret: never its value."""

    name: str
    updated_at: str


class SecretStore:
    """The platform's secrets on this machine (the orchestrator's actions read them)."""

    def __init__(self, settings: Settings) -> None:
        self._home = settings.home
        self.directory = settings.home / "secrets"

    def set(self, name: str, value: str) -> tuple[SecretInfo, bool]:
        """Store `value` as `name`; also whether it is new (an existing one is replaced)."""
        path = self._path(name)
        data = value.encode()
        if not data or len(data) > MAX_VALUE_BYTES:
            raise InvalidInput(
                f"secret {name!r}: a value is 1 to {MAX_VALUE_BYTES} bytes",
                details={"name": name},
            )
        private_dir(self.directory, home=self._home)
        created = not path.exists()
        atomic_write(path, data, 0o600)
        return self._info(path), created

    def get(self, name: str) -> str:
        """The value of `name` (`NotFound` when it is not set)."""
        try:
            fd = os.open(self._path(name), os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            raise NotFound(
                f"secret {name!r} is not set; set it with `prvng secret set --name {name}`",
                details={"secret": name},
            ) from None
        with os.fdopen(fd, "rb") as file:
            return file.read().decode()

    def list(self) -> list[SecretInfo]:
        if not self.directory.is_dir():
            return []
        return [
            self._info(path)
            for path in sorted(self.directory.iterdir())
            if _NAME.fullmatch(path.name) and path.is_file()
        ]

    def delete(self, name: str) -> None:
        try:
            self._path(name).unlink()
        except FileNotFoundError:
            raise NotFound(f"secret {name!r} is not set", details={"secret": name}) from None

    def _path(self, name: str) -> Path:
        if not _NAME.fullmatch(name):
            raise InvalidInput(
                f"secret name {name!r} must be 1-128 of A-Z, a-z, 0-9, '_', '.', '-'",
                details={"name": name},
            )
        return self.directory / name

    @staticmethod
    def _info(path: Path) -> SecretInfo:
        mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        return SecretInfo(
            path.name, mtime.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        )
