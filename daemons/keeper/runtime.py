"""A keeper built from settings: policy from the config dir (else the shipped one), keys
from `PRVNG_HOME/keys/`, streams made sure of, and ops a crash left approved published again.
While it runs, `expiry_sweep` marks pending ops past their approval lifetime expired."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from nats.aio.client import Client

from daemons.bus import StreamLimits, ensure_streams
from daemons.common.heap import freeze_startup_heap
from daemons.common.settings import PROJECT_ROOT, Settings
from daemons.common.state import StateStore
from daemons.keeper.policy import load_policy
from daemons.keeper.service import Keeper
from daemons.keeper.signer import TOKEN_TTL_S
from daemons.ops.keyring import KeyRing
from registry.errors import PlatformError

log = logging.getLogger(__name__)

POLICY_FILE = "keeper_policy.ncl"
DEFAULT_POLICY = PROJECT_ROOT / "config" / POLICY_FILE


def policy_path(settings: Settings) -> Path:
    """The workspace's policy, or the shipped one when the config dir has none (as Cedar's)."""
    path = settings.config_dir / POLICY_FILE
    return path if path.is_file() else DEFAULT_POLICY


async def open_keeper(settings: Settings, state: StateStore, nc: Client) -> Keeper:
    policy = load_policy(policy_path(settings))
    js = nc.jetstream()
    window = max(policy.approval_ttl_s, TOKEN_TTL_S)
    await ensure_streams(js, StreamLimits(duplicate_window_s=window))
    keeper = Keeper(policy=policy, keys=KeyRing(settings.keys_dir).load(), state=state, js=js)
    await keeper.republish()
    freeze_startup_heap()
    return keeper


async def _sweep(keeper: Keeper, interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)  # a period, not a wait for a state
        try:
            expired = await keeper.expire()
        except PlatformError as exc:  # the state store or NATS away: the next sweep retries
            log.warning("keeper: expiry sweep failed: %s", exc.message)
            continue
        if expired:
            log.info("keeper: %d op(s) expired: %s", len(expired), ", ".join(expired))


@contextlib.asynccontextmanager
async def expiry_sweep(keeper: Keeper, interval_s: float) -> AsyncIterator[None]:
    """Run `Keeper.expire` every `interval_s` seconds while the block runs (each expired op
    gets its `ops.audit.expired` event then, not only when someone touches it)."""
    task = asyncio.create_task(_sweep(keeper, interval_s), name="keeper-expiry")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
