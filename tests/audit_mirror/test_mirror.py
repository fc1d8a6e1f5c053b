"""The mirror on a real nats-server and real git: signed commits, dedup across a crash,
completeness, publishing to a bare remote."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path

import pytest
from nats.aio.client import Client

from daemons.audit_mirror import MirrorConfig, read_stream, verify
from daemons.audit_mirror.repo import git_env
from daemons.audit_mirror.signing import ensure_signing_key
from daemons.bus import AUDIT_STREAM
from daemons.ops.audit import AuditPublisher, Outcome
from tests.audit_mirror.conftest import StartMirror, git_out
from tests.waiting import until


async def publish(nc: Client, n: int) -> list[str]:
    audit = AuditPublisher(nc.jetstream(), "keeper")
    ids = []
    for i in range(n):
        event = await audit.emit(
            Outcome.APPROVED,
            key=f"k{i}",
            op_id=f"op-{i:032x}",
            op_type="server.delete",
            actor="alice",
            trace_id=f"trace-{i}",
        )
        ids.append(event.id)
    return ids


def commits(repo: Path) -> list[str]:
    return git_out(repo, "rev-list", "main").split()


async def test_each_event_is_one_signed_commit(
    nc: Client, start_mirror: StartMirror, mirror_config: MirrorConfig
) -> None:
    ids = await publish(nc, 3)
    mirror = await start_mirror()
    await until(lambda: mirror.counts.committed == 3, what="3 events committed", within_s=30)
    repo = mirror_config.repo_dir
    key = ensure_signing_key(mirror_config.keys_dir)
    for commit in commits(repo):
        done = subprocess.run(  # noqa: ASYNC221  # git is the point; short-lived
            [
                "git",
                "-C",
                str(repo),
                "-c",
                f"gpg.ssh.allowedSignersFile={key.allowed_signers}",
                "verify-commit",
                commit,
            ],
            capture_output=True,
            env=git_env(),
            check=False,
        )
        assert done.returncode == 0, done.stderr
    message = git_out(repo, "log", "-1", "--format=%B")
    for expected in ("server.delete", "approved", "alice", "op-" + f"{2:032x}", "trace-2"):
        assert expected in message
    files = git_out(repo, "ls-tree", "-r", "--name-only", "main").split()
    assert sorted(Path(f).stem for f in files) == sorted(ids)
    assert all(f.startswith("events/") and f.count("/") == 4 for f in files)
    body = json.loads(git_out(repo, "show", f"main:{files[0]}"))
    assert body["id"] in ids and body["outcome"] == "approved"


async def test_crash_between_commit_and_ack_makes_one_commit(
    nc: Client, start_mirror: StartMirror, mirror_config: MirrorConfig
) -> None:
    from daemons.audit_mirror import AuditMirror

    await publish(nc, 1)
    crashed = AuditMirror(nc=nc, config=mirror_config)
    crashed.repo.open()
    js = nc.jetstream()
    await js.add_consumer(AUDIT_STREAM, crashed.consumer_config())
    sub = await js.pull_subscribe_bind(mirror_config.durable, stream=AUDIT_STREAM)
    [msg] = await sub.fetch(1, timeout=5)
    assert await crashed.record(msg)  # committed, and the process dies before the ack
    crashed.repo.close()
    await sub.unsubscribe()

    mirror = await start_mirror()  # restarted: index rebuilt from the repository
    await until(lambda: mirror.counts.duplicates == 1, what="the duplicate seen", within_s=30)
    assert mirror.counts.committed == 0
    assert len(commits(mirror_config.repo_dir)) == 1

    async def acked() -> bool:
        info = await js.consumer_info(AUDIT_STREAM, mirror_config.durable)
        return not info.num_ack_pending and info.num_pending == 0

    await until(acked, what="the redelivered event acked", within_s=30)


async def _many(nc: Client, start_mirror: StartMirror, config: MirrorConfig, n: int) -> None:
    ids = await publish(nc, n)
    mirror = await start_mirror()
    await until(lambda: mirror.counts.committed == n, what=f"{n} events committed", within_s=600)
    for event_id in ids[:5]:  # the same events again, past JetStream's duplicate window
        body = git_out(config.repo_dir, "show", f"main:{_path_of(config.repo_dir, event_id)}")
        await nc.jetstream().publish(
            "ops.audit.approved", body.encode(), headers={"Nats-Msg-Id": f"again-{event_id}"}
        )
    await until(lambda: mirror.counts.duplicates >= 5, what="5 duplicates seen", within_s=30)
    assert len(commits(config.repo_dir)) == n
    key = ensure_signing_key(config.keys_dir)
    report = verify(config.repo_dir, key.allowed_signers, stream=await read_stream(nc))
    assert report.ok, report.problems
    assert report.commits == n and len(report.events) == n


async def test_100_events_100_verified_commits(
    nc: Client, start_mirror: StartMirror, mirror_config: MirrorConfig
) -> None:
    await _many(nc, start_mirror, mirror_config, 100)


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_1000_events_1000_verified_commits(
    nc: Client, start_mirror: StartMirror, mirror_config: MirrorConfig
) -> None:
    await _many(nc, start_mirror, mirror_config, 1000)


async def test_commits_reach_a_bare_remote(
    nc: Client, start_mirror: StartMirror, mirror_config: MirrorConfig, tmp_path: Path
) -> None:
    remote = tmp_path / "remote.git"
    subprocess.run(  # noqa: ASYNC221  # before the loop does anything
        ["git", "init", "-q", "--bare", str(remote)], check=True, env=git_env()
    )
    unreachable = str(tmp_path / "absent.git")
    config = dataclasses.replace(mirror_config, remotes=(str(remote), unreachable))
    await publish(nc, 4)
    mirror = await start_mirror(config)
    await until(lambda: mirror.counts.committed == 4, what="4 events committed", within_s=30)
    head = git_out(mirror_config.repo_dir, "rev-parse", "main").strip()
    await until(lambda: _remote_head(remote) == head, what="the push to the remote", within_s=30)
    assert "absent.git" in mirror.publisher.last_error  # retried, never blocking


def _path_of(repo: Path, event_id: str) -> str:
    files = git_out(repo, "ls-tree", "-r", "--name-only", "main").split()
    return next(f for f in files if Path(f).stem == event_id)


def _remote_head(remote: Path) -> str:
    done = subprocess.run(
        ["git", "-C", str(remote), "rev-parse", "-q", "--verify", "refs/heads/main"],
        capture_output=True,
        text=True,
        env=git_env(),
        check=False,
    )
    return done.stdout.strip()
