"""Building an audit repository to tamper with: signed events, then a commit nobody signed."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime

from daemons.audit_mirror import AuditRepo, ensure_signing_key, parse_event
from daemons.audit_mirror.repo import git_env, run_git
from daemons.common.settings import Settings


def commit_signed_events(settings: Settings, count: int) -> None:
    """`count` events (`ev-0`...) committed and signed with the home's audit key."""
    with AuditRepo(settings.audit_dir, ensure_signing_key(settings.keys_dir)) as repo:
        for i in range(count):
            repo.commit(parse_event(f'{{"id":"ev-{i}"}}'.encode(), None, datetime.now(UTC)))


def forge_unsigned_commit(settings: Settings) -> str:
    """A commit on top of `main` that nobody signed (same tree), made the head: its id."""
    env = {**git_env(), "GIT_AUTHOR_NAME": "m", "GIT_COMMITTER_NAME": "m"}
    tree = run_git(settings.audit_dir, "rev-parse", "main^{tree}").stdout.decode().strip()
    commit = subprocess.run(
        ["git", "-C", str(settings.audit_dir), "commit-tree", "-p", "main", tree, "-m", "x"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout.strip()
    run_git(settings.audit_dir, "update-ref", "refs/heads/main", commit)
    return commit
