"""`verify` against each tamper case, on a real repository the mirror's `AuditRepo` wrote:
an unsigned commit, an edited event file, a deleted event, a rewritten commit."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from daemons.audit_mirror import AuditRepo, SigningKey, ensure_signing_key, parse_event, verify
from daemons.audit_mirror.repo import git_env
from tests.audit_mirror.conftest import git_out


@pytest.fixture
def key(tmp_path: Path) -> SigningKey:
    return ensure_signing_key(tmp_path / "keys")


@pytest.fixture
def stream() -> dict[str, bytes]:
    """Five events, as the stream would hold them (key → canonical bytes)."""
    events = {}
    for i in range(5):
        body = f'{{"id":"ev-{i}","at":"2026-12-02T01:0{i}:00Z","outcome":"approved"}}'
        record = parse_event(body.encode(), None, datetime.now(UTC))
        events[record.key] = record.content
    return events


@pytest.fixture
def repo(tmp_path: Path, key: SigningKey, stream: dict[str, bytes]) -> Iterator[Path]:
    with AuditRepo(tmp_path / "audit", key) as audit:
        for content in stream.values():
            audit.commit(parse_event(content, None, datetime.now(UTC)))
    git_out(audit.path, "checkout", "-q", "-f", "main")  # a worktree to tamper in
    yield audit.path


def git_in(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, env=git_env()
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def kinds(repo: Path, key: SigningKey, **kw: object) -> set[tuple[str, str | None]]:
    report = verify(repo, key.allowed_signers, **kw)  # type: ignore[arg-type]  # test helper
    return {(p.kind, p.commit) for p in report.problems}


def test_the_untouched_repository_verifies(
    repo: Path, key: SigningKey, stream: dict[str, bytes]
) -> None:
    report = verify(repo, key.allowed_signers, stream=stream)
    assert report.ok, report.problems
    assert report.commits == 5 and sorted(report.events) == sorted(stream)


def test_an_unsigned_commit_is_named(repo: Path, key: SigningKey) -> None:
    path = repo / "events/2026/12/02/ev-9.json"
    path.write_text('{"id":"ev-9"}\n')
    git_in(repo, "add", str(path))
    git_in(repo, "-c", "commit.gpgsign=false", "commit", "-q", "-m", "x")
    head = git_in(repo, "rev-parse", "HEAD")
    assert ("unsigned", head) in kinds(repo, key)


def test_an_edited_event_file_is_named_even_when_signed_with_the_trusted_key(
    repo: Path, key: SigningKey, stream: dict[str, bytes]
) -> None:
    path = repo / "events/2026/12/02/ev-1.json"
    path.write_text(path.read_text().replace("approved", "denied"))
    git_in(repo, "commit", "-q", "-a", "-m", "fix")  # the repository signs with the real key
    head = git_in(repo, "rev-parse", "HEAD")
    found = kinds(repo, key, stream=stream)
    assert ("edited_event", head) in found
    assert ("unsigned", head) not in found


def test_an_amended_event_file_fails_its_hash(
    repo: Path, key: SigningKey, stream: dict[str, bytes]
) -> None:
    path = repo / "events/2026/12/02/ev-4.json"
    path.write_text(path.read_text().replace("approved", "denied"))
    git_in(repo, "commit", "-q", "-a", "--amend", "--no-edit")  # signed, message kept
    head = git_in(repo, "rev-parse", "HEAD")
    assert ("edited_event", head) in kinds(repo, key, stream=stream)


def test_a_deleted_event_is_named(repo: Path, key: SigningKey, stream: dict[str, bytes]) -> None:
    git_in(repo, "rm", "-q", "events/2026/12/02/ev-2.json")
    git_in(repo, "commit", "-q", "-m", "drop")
    head = git_in(repo, "rev-parse", "HEAD")
    assert ("deleted_event", head) in kinds(repo, key)


def test_an_event_dropped_from_history_is_missing_against_the_stream(
    repo: Path, key: SigningKey, stream: dict[str, bytes]
) -> None:
    git_in(repo, "reset", "-q", "--hard", "HEAD~1")  # the chain that is left is valid
    assert verify(repo, key.allowed_signers).ok
    assert ("missing_event", None) in kinds(repo, key, stream=stream)


def test_a_rewritten_commit_is_named(
    repo: Path, key: SigningKey, tmp_path: Path, stream: dict[str, bytes]
) -> None:
    """The attacker rewrites the second commit's message and re-signs it and all that
    follow with a key of their own."""
    published = git_in(repo, "rev-parse", "HEAD")
    attacker = ensure_signing_key(tmp_path / "attacker")
    old = git_in(repo, "rev-list", "--reverse", "main").split()
    parent = old[0]
    rewritten = []
    for index, commit in enumerate(old[1:], start=1):
        message = git_in(repo, "log", "-1", "--format=%B", commit)
        if index == 1:
            message = message.replace("Actor: -", "Actor: mallory")
        tree = git_in(repo, "rev-parse", f"{commit}^{{tree}}")
        parent = subprocess.run(
            [
                "git",
                "-C",
                str(repo),
                "-c",
                f"user.signingkey={attacker.private_key}",
                "commit-tree",
                "-S",
                "-p",
                parent,
                tree,
            ],
            input=message,
            capture_output=True,
            text=True,
            env=git_env(),
            check=True,
        ).stdout.strip()
        rewritten.append(parent)
    git_in(repo, "update-ref", "refs/heads/main", parent)
    found = kinds(repo, key, stream=stream, anchors=[published])
    assert {("untrusted_signature", c) for c in rewritten} <= found
    assert ("rewritten_history", published) in found
