"""Workflow ids: they name journal files and work dirs, so one pattern (`model`) checks
every id a caller gives, and new ones sort by creation time."""

from __future__ import annotations

import re
import secrets
import time

from daemons.orchestrator.model import WORKFLOW_ID_PATTERN
from registry.errors import InvalidInput

WORKFLOW_ID = re.compile(WORKFLOW_ID_PATTERN)


def check_id(workflow_id: str) -> None:
    """`InvalidInput` unless `workflow_id` is a valid id (it names files)."""
    if not WORKFLOW_ID.fullmatch(workflow_id):
        raise InvalidInput(
            f"workflow id {workflow_id!r} must be 1-64 of a-z, 0-9, '-' and '_', "
            "starting with a letter or digit",
            details={"id": workflow_id},
        )


def new_workflow_id() -> str:
    """Sortable by creation time (milliseconds), unique by 32 random bits."""
    return f"wf-{int(time.time() * 1000):012x}{secrets.token_hex(4)}"
