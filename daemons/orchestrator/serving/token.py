"""The orchestrator API's bearer token: `PRVNG_ORCHESTRATOR_TOKEN`, else a 0600 file under
`PRVNG_HOME/credentials/` created on first use (so local clients find it, nobody else)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from daemons.common.files import create_secret_file
from daemons.common.settings import Settings

TOKEN_ENV = "PRVNG_ORCHESTRATOR_TOKEN"


def token_file(settings: Settings) -> Path:
    return settings.credentials_dir / "orchestrator-token"


def orchestrator_token(settings: Settings) -> str:
    """The token the daemon accepts and clients send."""
    given = os.environ.get(TOKEN_ENV)
    if given:
        return given
    path = token_file(settings)
    create_secret_file(path, secrets.token_urlsafe(32))
    return path.read_text().strip()
