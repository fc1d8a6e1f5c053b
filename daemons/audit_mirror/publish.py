"""Pushes the audit repository to its remotes, in the background.

A commit only marks the repository dirty; one task pushes `main` to every remote (never
forced: a remote that diverged keeps failing loudly), retrying with a growing delay, so a
slow or absent remote never holds up consumption. Where Radicle's `rad` CLI is installed
the repository is announced after a successful push, as the original did.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from pathlib import Path

from daemons.audit_mirror.repo import BRANCH, git_env

log = logging.getLogger(__name__)


async def _run(repo: Path, *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *args,
        cwd=repo,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=git_env(),
    )
    _out, err = await proc.communicate()
    return proc.returncode or 0, err.decode(errors="replace").strip()


class Publisher:
    """Keeps each remote at the repository's `main`; `pushed` counts successful rounds."""

    def __init__(
        self, repo: Path, remotes: tuple[str, ...], *, backoff_s: tuple[float, float] = (0.5, 30.0)
    ) -> None:
        self.repo = repo
        self.remotes = remotes
        self.pushed = 0
        self.last_error = ""
        self._backoff = backoff_s
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.remotes and self._task is None:
            self._dirty.set()  # what an earlier run committed but never pushed
            self._task = asyncio.create_task(self._loop(), name="audit-publish")

    def changed(self) -> None:
        """A commit happened: push soon (commits arriving meanwhile go in the same push)."""
        self._dirty.set()

    async def _loop(self) -> None:
        delay = self._backoff[0]
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            if await self.push_once():
                delay = self._backoff[0]
                continue
            self._dirty.set()
            await asyncio.sleep(delay)  # a failed push: back off before the next attempt
            delay = min(delay * 2, self._backoff[1])

    async def push_once(self) -> bool:
        """Push `main` to every remote; True when all took it."""
        ok = True
        for remote in self.remotes:
            code, err = await _run(self.repo, "git", "push", "-q", remote, f"{BRANCH}:{BRANCH}")
            if code != 0:
                ok = False
                self.last_error = f"push to {remote} failed: {err}"
                log.warning("audit mirror: %s", self.last_error)
        if ok:
            self.pushed += 1
            self.last_error = ""
            if shutil.which("rad"):
                code, err = await _run(self.repo, "rad", "sync", "--announce")
                if code != 0:
                    log.warning("audit mirror: rad announce failed: %s", err)
        return ok

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
