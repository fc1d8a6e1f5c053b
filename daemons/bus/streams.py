"""The ops streams and subjects, and a connection that has made sure they exist.

`OPS_PENDING` carries signed ops (`ops.pending.<type>`); its duplicate window is at least
the approval lifetime, so a keeper republishing an op (same `Nats-Msg-Id` = jti) after a
crash or a timeout stores it once. `OPS_AUDIT` carries every decision and outcome
(`ops.audit.<outcome>`). Both are file-backed and created or updated at every start.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import ObjectStoreConfig, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BucketNotFoundError, NotFoundError

from registry.errors import Unavailable

PENDING_STREAM = "OPS_PENDING"
AUDIT_STREAM = "OPS_AUDIT"
BODIES_BUCKET = "OPS_BODIES"
"""Big ops' params and plans, by digest (an object store: chunked, so over max_payload)."""
PENDING_PREFIX = "ops.pending."
AUDIT_PREFIX = "ops.audit."
MSG_ID = "Nats-Msg-Id"
TRACE_ID = "Prvng-Trace-Id"

_TOKEN = re.compile(r"[^A-Za-z0-9_-]")


def subject_token(name: str) -> str:
    """`server.delete` → `server_delete`: one NATS subject token (no dots or wildcards)."""
    return _TOKEN.sub("_", name) or "_"


def pending_subject(op_type: str) -> str:
    return PENDING_PREFIX + subject_token(op_type)


def audit_subject(outcome: str) -> str:
    return AUDIT_PREFIX + subject_token(outcome)


@dataclass(frozen=True, slots=True)
class StreamLimits:
    """How long the streams keep what they carry."""

    duplicate_window_s: float = 3600.0
    """At least the approval lifetime (see module docstring)."""
    pending_max_age_s: float = 7 * 86400.0
    audit_max_age_s: float = 30 * 86400.0


def stream_configs(limits: StreamLimits) -> list[StreamConfig]:
    return [
        StreamConfig(
            name=PENDING_STREAM,
            subjects=[PENDING_PREFIX + ">"],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            duplicate_window=limits.duplicate_window_s,
            max_age=limits.pending_max_age_s,
        ),
        StreamConfig(
            name=AUDIT_STREAM,
            subjects=[AUDIT_PREFIX + ">"],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            duplicate_window=120.0,
            max_age=limits.audit_max_age_s,
        ),
    ]


async def ensure_streams(js: JetStreamContext, limits: StreamLimits | None = None) -> None:
    """Create each ops stream, or update it to this configuration (idempotent), and the
    bucket of big ops' bodies (`daemons.ops.bodies`), kept as long as the ops."""
    limits = limits or StreamLimits()
    await ensure_bodies(js, limits.pending_max_age_s)
    for config in stream_configs(limits):
        assert config.name is not None
        try:
            await js.stream_info(config.name)
        except NotFoundError:
            await js.add_stream(config)
        else:
            await js.update_stream(config)


async def ensure_bodies(js: JetStreamContext, max_age_s: float) -> None:
    """Create the object store bucket `BODIES_BUCKET` (file storage) if there is none."""
    try:
        await js.object_store(BODIES_BUCKET)
    except BucketNotFoundError:
        config = ObjectStoreConfig(bucket=BODIES_BUCKET, storage=StorageType.FILE, ttl=max_age_s)
        await js.create_object_store(BODIES_BUCKET, config=config)


FIRST_CONNECT_TIMEOUT_S = 5.0


async def connect(url: str, *, name: str) -> Client:
    """A NATS connection that keeps reconnecting (a restarted server is found again)."""
    try:
        # Reconnecting forever applies to the first connection too: bound that one.
        return await asyncio.wait_for(
            nats.connect(
                url,
                name=name,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.1,
                connect_timeout=2,
            ),
            FIRST_CONNECT_TIMEOUT_S,
        )
    except Exception as exc:
        raise Unavailable(
            f"cannot reach NATS at {url}: {exc}; start the platform (it bundles nats-server) "
            "or point PRVNG_NATS_URL at a running server"
        ) from exc
