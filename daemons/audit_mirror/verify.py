"""`audit verify`: is the audit repository exactly the signed, linear record of the stream?

Checks, naming the problem and the commit: every commit signed by a key the allowed-signers
file trusts; history linear (one root, no merges) and containing every anchor (a head
published earlier, such as a remote's: a rewrite drops it); each commit adding exactly one
event file and changing nothing else, the file's SHA-256 and path being those its trailers
name; and, given the stream, every event in it having exactly one commit with its content.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from nats.aio.client import Client
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import FetchTimeoutError

from daemons.audit_mirror.event import SHA_TRAILER, parse_event
from daemons.audit_mirror.repo import BRANCH, git, run_git
from daemons.bus import AUDIT_PREFIX, AUDIT_STREAM, MSG_ID
from registry.errors import InvalidInput

_PATH = re.compile(r"^events/\d{4}/\d{2}/\d{2}/([^/]+)\.json$")
_SIGNATURES = {
    "N": ("unsigned", "is not signed"),
    "B": ("bad_signature", "has a signature that does not match its content"),
    "U": ("untrusted_signature", "is signed by a key the allowed-signers file does not trust"),
    "E": ("untrusted_signature", "has a signature that cannot be checked with a trusted key"),
}


@dataclass(frozen=True, slots=True)
class Problem:
    kind: str
    """unsigned, bad_signature, untrusted_signature, not_linear, rewritten_history,
    not_one_event, edited_event, deleted_event, duplicate_event, missing_event."""
    commit: str | None
    detail: str

    def __str__(self) -> str:
        where = f"commit {self.commit[:12]}" if self.commit else "repository"
        return f"{self.kind}: {where}: {self.detail}"


@dataclass(slots=True)
class VerifyReport:
    head: str | None = None
    commits: int = 0
    events: dict[str, str] = field(default_factory=dict)
    """Event key → the commit that added it."""
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True, slots=True)
class _Commit:
    oid: str
    parents: list[str]
    signature: str
    message: str
    changes: list[tuple[str, str, str]]
    """(status, blob id, path) of each file the commit changes."""


def _log(repo: Path, head: str, allowed_signers: Path) -> list[_Commit]:
    out = git(
        repo,
        "-c",
        f"gpg.ssh.allowedSignersFile={allowed_signers}",
        "log",
        "--reverse",
        "--root",
        "--raw",
        "--no-renames",
        "--no-abbrev",
        "--format=%x1e%H%x1f%P%x1f%G?%x1f%B%x1f",
        head,
    )
    commits = []
    for chunk in out.split("\x1e")[1:]:
        oid, parents, signature, message, raw = chunk.split("\x1f")
        changes = []
        for line in raw.strip().splitlines():
            meta, path = line.split("\t", 1)
            fields = meta.split()
            changes.append((fields[4], fields[3], path))
        commits.append(_Commit(oid, parents.split(), signature, message, changes))
    return commits


def _trailers(message: str) -> dict[str, str]:
    lines = (line.partition(": ") for line in message.strip().splitlines())
    return {key: value for key, sep, value in lines if sep and " " not in key}


def _blobs(repo: Path, oids: Iterable[str]) -> dict[str, bytes]:
    wanted = sorted(set(oids))
    if not wanted:
        return {}
    out = run_git(
        repo, "cat-file", "--batch", stdin="".join(f"{o}\n" for o in wanted).encode()
    ).stdout
    blobs, pos = {}, 0
    for oid in wanted:
        end = out.index(b"\n", pos)
        size = int(out[pos:end].split()[2])
        blobs[oid] = out[end + 1 : end + 1 + size]
        pos = end + 2 + size
    return blobs


def verify(
    repo: Path,
    allowed_signers: Path,
    *,
    stream: Mapping[str, bytes] | None = None,
    anchors: Iterable[str] = (),
) -> VerifyReport:
    """Check the repository at `repo`; `stream` maps event keys to their canonical bytes."""
    report = VerifyReport()
    report.head = git(repo, "rev-parse", "-q", "--verify", BRANCH, check=False).strip() or None
    commits = _log(repo, report.head, allowed_signers) if report.head else []
    report.commits = len(commits)
    problems = report.problems
    for anchor in anchors:
        if (
            not report.head
            or run_git(repo, "merge-base", "--is-ancestor", anchor, report.head).returncode
        ):
            problems.append(
                Problem("rewritten_history", anchor, "was published but is not in the history")
            )
    blobs = _blobs(repo, (oid for c in commits for s, oid, _p in c.changes if s == "A"))
    contents: dict[str, bytes] = {}
    for index, commit in enumerate(commits):
        _check_commit(commit, index, commits, blobs, report, contents)
    if stream is not None:
        for key, content in stream.items():
            if key not in report.events:
                problems.append(Problem("missing_event", None, f"event {key} has no commit"))
            elif contents.get(key) != content:
                problems.append(
                    Problem(
                        "edited_event",
                        report.events[key],
                        f"event {key} differs from the stream's copy",
                    )
                )
    return report


def _check_commit(
    commit: _Commit,
    index: int,
    commits: list[_Commit],
    blobs: Mapping[str, bytes],
    report: VerifyReport,
    contents: dict[str, bytes],
) -> None:
    problems = report.problems
    if commit.signature != "G":
        kind, what = _SIGNATURES.get(commit.signature, ("bad_signature", "is not verifiable"))
        problems.append(Problem(kind, commit.oid, what))
    expected = [commits[index - 1].oid] if index else []
    if commit.parents != expected:
        problems.append(
            Problem("not_linear", commit.oid, f"has parents {commit.parents or 'none'}")
        )
    for status, _oid, path in commit.changes:
        match = _PATH.match(path)
        if status == "D" and match:
            problems.append(Problem("deleted_event", commit.oid, f"deletes {path}"))
        elif status == "M" and match:
            problems.append(Problem("edited_event", commit.oid, f"changes {path}"))
    added = [(oid, path) for status, oid, path in commit.changes if status == "A"]
    if len(commit.changes) != 1 or len(added) != 1:
        problems.append(
            Problem("not_one_event", commit.oid, f"makes {len(commit.changes)} changes, not one")
        )
        return
    oid, path = added[0]
    match = _PATH.match(path)
    content = blobs.get(oid, b"")
    trailers = _trailers(commit.message)
    if not match or trailers.get("Event-Path") != path:
        problems.append(Problem("not_one_event", commit.oid, f"adds {path}, not its event"))
        return
    if trailers.get(SHA_TRAILER) != hashlib.sha256(content).hexdigest():
        problems.append(
            Problem("edited_event", commit.oid, f"{path} does not match its {SHA_TRAILER}")
        )
    key = match.group(1)
    if key in report.events:
        problems.append(
            Problem("duplicate_event", commit.oid, f"event {key} already in {report.events[key]}")
        )
        return
    report.events[key] = commit.oid
    contents[key] = content


async def read_stream(nc: Client) -> dict[str, bytes]:
    """Every event the audit stream holds now: key → canonical bytes (an ephemeral,
    unacknowledged reader: the mirror's own consumer is not touched)."""
    js = nc.jetstream()
    info = await js.stream_info(AUDIT_STREAM)
    last = info.state.last_seq
    events: dict[str, bytes] = {}
    if info.state.messages == 0:
        return events
    sub = await js.pull_subscribe(
        AUDIT_PREFIX + ">",
        stream=AUDIT_STREAM,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL, inactive_threshold=30.0),
    )
    try:
        seen = 0
        while seen < last:
            try:
                batch = await sub.fetch(256, timeout=2.0)
            except (FetchTimeoutError, TimeoutError):
                break
            for msg in batch:
                seen = msg.metadata.sequence.stream
                stamp = msg.metadata.timestamp or datetime.now(UTC)
                with contextlib.suppress(InvalidInput):  # never stored by the mirror either
                    record = parse_event(msg.data, (msg.headers or {}).get(MSG_ID), stamp)
                    events.setdefault(record.key, record.content)  # the first: the one committed
                await msg.ack()
    finally:
        await sub.unsubscribe()
    return events
