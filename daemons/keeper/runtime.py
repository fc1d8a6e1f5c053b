"""A keeper built from settings: policy from the config dir (else the shipped one), keys
from `PRVNG_HOME/keys/`, streams made sure of, and ops a crash left approved published again."""

from __future__ import annotations

from pathlib import Path

from nats.aio.client import Client

from daemons.bus import StreamLimits, ensure_streams
from daemons.common.settings import PROJECT_ROOT, Settings
from daemons.common.state import StateStore
from daemons.keeper.policy import load_policy
from daemons.keeper.service import Keeper
from daemons.keeper.signer import TOKEN_TTL_S
from daemons.ops.heap import freeze_startup_heap
from daemons.ops.keyring import KeyRing

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
