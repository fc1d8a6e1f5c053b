"""`prvng daemon audit-mirror` and `prvng audit verify`: the mirror alone, and the check.

NATS is `PRVNG_NATS_URL`, else a bundled nats-server on the home's store (as the
platform's); remotes come from `PRVNG_AUDIT_REMOTES` (comma-separated git URLs).
`AuditVerifier` is the same check for a running event loop (the `audit.verify` tool's).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

from daemons.audit_mirror.repo import BRANCH, run_git
from daemons.audit_mirror.service import AuditMirror, MirrorConfig
from daemons.audit_mirror.signing import ensure_signing_key
from daemons.audit_mirror.verify import VerifyReport, read_stream, verify
from daemons.bus import NatsServer, connect, ensure_streams
from daemons.common.settings import Settings
from daemons.common.signals import stop_requested


def mirror_config(settings: Settings) -> MirrorConfig:
    remotes = os.environ.get("PRVNG_AUDIT_REMOTES", "")
    return MirrorConfig(
        repo_dir=settings.audit_dir,
        keys_dir=settings.keys_dir,
        remotes=tuple(r.strip() for r in remotes.split(",") if r.strip()),
    )


async def _serve(settings: Settings) -> None:
    with contextlib.ExitStack() as stack:
        url = os.environ.get("PRVNG_NATS_URL")
        if not url:
            url = stack.enter_context(NatsServer(settings.nats_dir)).url
        nc = await connect(url, name="audit-mirror")
        try:
            await ensure_streams(nc.jetstream())
            mirror = AuditMirror(nc=nc, config=mirror_config(settings))
            with stop_requested() as stop:
                await mirror.start()
                try:
                    await stop.wait()
                finally:
                    await mirror.stop()
        finally:
            await nc.close()


def run_daemon(settings: Settings) -> int:
    """Consume and commit until SIGINT/SIGTERM."""
    asyncio.run(_serve(settings))
    return 0


def remote_heads(repo: Path, remotes: tuple[str, ...]) -> list[str]:
    """The `main` each remote holds: commits published earlier, so a rewrite shows."""
    heads = []
    for remote in remotes:
        done = run_git(repo, "ls-remote", remote, BRANCH)
        if done.returncode == 0 and done.stdout.split():
            heads.append(done.stdout.split()[0].decode())
    return heads


async def _stream(url: str) -> dict[str, bytes]:
    nc = await connect(url, name="audit-verify")
    try:
        return await read_stream(nc)
    finally:
        await nc.close()


def _verify_repo(settings: Settings, stream: dict[str, bytes] | None) -> VerifyReport:
    config = mirror_config(settings)
    key = ensure_signing_key(config.keys_dir)
    anchors = remote_heads(config.repo_dir, config.remotes)
    return verify(config.repo_dir, key.allowed_signers, stream=stream, anchors=anchors)


def verify_home(settings: Settings, nats_url: str | None) -> VerifyReport:
    """Verify the home's audit repository: against its remotes' heads and, with a NATS
    URL, against the audit stream."""
    stream = asyncio.run(_stream(nats_url)) if nats_url else None
    return _verify_repo(settings, stream)


class AuditVerifier:
    """`verify_home` from inside an event loop: git runs in a worker thread."""

    def __init__(self, settings: Settings, nats_url: str | None = None) -> None:
        self.settings = settings
        self.nats_url = nats_url

    @classmethod
    def from_settings(cls, settings: Settings) -> AuditVerifier:
        return cls(settings, os.environ.get("PRVNG_NATS_URL") or None)

    async def verify(self, *, stream: bool = True) -> tuple[VerifyReport, bool]:
        """The report, and whether the audit stream was consulted (needs a NATS URL)."""
        events = await _stream(self.nats_url) if stream and self.nats_url else None
        report = await asyncio.to_thread(_verify_repo, self.settings, events)
        return report, events is not None
