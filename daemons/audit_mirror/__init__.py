"""The audit mirror: every event of `ops.audit.>` as one signed git commit.

service   AuditMirror: the durable consumer (commit, then ack)
repo      AuditRepo: plumbing-built signed commits, the dedup index
event     EventRecord: path, canonical bytes and message of one event
signing   the Ed25519 SSH key and its allowed-signers file
publish   Publisher: background pushes to remotes (and `rad` announce)
verify    verify(): signatures, linear history, content, completeness
"""

from daemons.audit_mirror.event import EventRecord, file_key, parse_event
from daemons.audit_mirror.publish import Publisher
from daemons.audit_mirror.repo import AuditRepo
from daemons.audit_mirror.service import AuditMirror, MirrorConfig, MirrorCounts
from daemons.audit_mirror.signing import SigningKey, ensure_signing_key
from daemons.audit_mirror.verify import Problem, VerifyReport, read_stream, verify

__all__ = [
    "AuditMirror",
    "AuditRepo",
    "EventRecord",
    "MirrorConfig",
    "MirrorCounts",
    "Problem",
    "Publisher",
    "SigningKey",
    "VerifyReport",
    "ensure_signing_key",
    "file_key",
    "parse_event",
    "read_stream",
    "verify",
]
