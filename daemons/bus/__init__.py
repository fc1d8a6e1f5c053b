"""The message bus: the bundled nats-server, the ops streams and their subjects.

A shared low-level helper like `daemons.common` (it knows no daemon); keeper and
controller talk to each other only through what this package names.
"""

from daemons.bus.server import NatsServer, nats_server_binary
from daemons.bus.streams import (
    AUDIT_PREFIX,
    AUDIT_STREAM,
    BODIES_BUCKET,
    MSG_ID,
    PENDING_PREFIX,
    PENDING_STREAM,
    TRACE_ID,
    StreamLimits,
    audit_subject,
    connect,
    ensure_streams,
    pending_subject,
)

__all__ = [
    "AUDIT_PREFIX",
    "AUDIT_STREAM",
    "BODIES_BUCKET",
    "MSG_ID",
    "PENDING_PREFIX",
    "PENDING_STREAM",
    "TRACE_ID",
    "NatsServer",
    "StreamLimits",
    "audit_subject",
    "connect",
    "ensure_streams",
    "nats_server_binary",
    "pending_subject",
]
