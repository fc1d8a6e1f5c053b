"""The audit repository: one signed commit per event, built with git's plumbing.

`git commit` per event costs a worktree, an index and hooks; here a long-lived
`hash-object --stdin-paths` writes the blob, a long-lived `mktree --batch` writes the
four trees above it, `commit-tree -S` signs (git calls `ssh-keygen -Y sign`) and
`update-ref` moves `main` from the head we built on (compare-and-swap). `core.fsync =
committed` makes git fsync objects and the ref before it returns, so a returned commit
is durable. The dedup index is the set of event keys, rebuilt with one `ls-tree -r`.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from types import TracebackType

from daemons.audit_mirror.event import EVENTS_DIR, EventRecord
from daemons.audit_mirror.signing import PRINCIPAL, SigningKey, require_ssh_keygen
from daemons.common.files import private_dir
from registry.errors import Unavailable

BRANCH = "refs/heads/main"
ZERO = "0" * 40
Day = tuple[str, str, str]


def git_env() -> dict[str, str]:
    """Git without the user's global or system config (aliases, hooks, signing keys)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1", LC_ALL="C")
    return env


def run_git(
    repo: Path, *args: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run one git command in `repo`, whatever its exit status."""
    return subprocess.run(
        ["git", "-C", str(repo), *args], input=stdin, capture_output=True, env=git_env()
    )


def git(repo: Path, *args: str, stdin: bytes | None = None, check: bool = True) -> str:
    """Run one git command in `repo`; its stdout. `Unavailable` with git's message."""
    done = run_git(repo, *args, stdin=stdin)
    if check and done.returncode != 0:
        raise Unavailable(
            f"git {args[0]} failed in the audit repository {repo}: "
            f"{done.stderr.decode(errors='replace').strip()}"
        )
    return done.stdout.decode()


class _Pipe:
    """A long-lived git command answering one line per request."""

    def __init__(self, repo: Path, *args: str) -> None:
        self._cmd = ["git", "-C", str(repo), *args]
        self._proc: subprocess.Popen[str] | None = None

    def ask(self, request: str) -> str:
        if self._proc is not None and self._proc.poll() is not None:
            self.close()  # it died: close its pipes before starting another
        if self._proc is None:
            self._proc = subprocess.Popen(
                self._cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                env=git_env(),
            )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        try:
            self._proc.stdin.write(request)
            self._proc.stdin.flush()
            answer = self._proc.stdout.readline().strip()
        except OSError as exc:
            answer = f"({exc})"
        if len(answer) != 40:
            self.close()
            raise Unavailable(f"{' '.join(self._cmd[3:5])} failed: {answer or 'no answer'}")
        return answer

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait()
            assert proc.stdout is not None
            proc.stdout.close()


class AuditRepo:
    """The audit repository at `path`, signing with `key`; `open()` before use."""

    def __init__(self, path: Path, key: SigningKey) -> None:
        self.path = path
        self.key = key
        self.head: str | None = None
        self._days: dict[Day, dict[str, str]] = {}
        """`events/Y/M/D` → file name → blob id: what HEAD's tree holds."""
        self._trees: dict[tuple[str, ...], str] = {}
        """Tree id per directory below `events/` (`(Y,)`, `(Y, M)`, `(Y, M, D)`)."""
        self._keys: set[str] = set()
        self._blobs = _Pipe(path, "hash-object", "-w", "--no-filters", "--stdin-paths")
        self._mktree = _Pipe(path, "mktree", "--batch")

    def open(self) -> AuditRepo:
        """Create the repository on first start, (re)write its config, load the index."""
        require_ssh_keygen()
        private_dir(self.path)
        if not (self.path / ".git").exists():
            git(self.path, "init", "-q", "-b", "main")
        for name, value in (
            ("user.name", "prvng audit-mirror"),
            ("user.email", PRINCIPAL),
            ("gpg.format", "ssh"),
            ("user.signingkey", str(self.key.private_key)),
            ("gpg.ssh.allowedSignersFile", str(self.key.allowed_signers)),
            ("commit.gpgsign", "true"),
            ("core.fsync", "committed"),
            ("core.fsyncMethod", "fsync"),
        ):
            git(self.path, "config", name, value)
        self.reload()
        return self

    def reload(self) -> None:
        """Rebuild the tree cache and the dedup index from HEAD (one `ls-tree` call)."""
        head = git(self.path, "rev-parse", "-q", "--verify", BRANCH, check=False).strip()
        self.head = head or None
        self._days, self._trees, self._keys = {}, {}, set()
        if self.head is None:
            return
        for line in git(self.path, "ls-tree", "-r", "-t", self.head, "--", EVENTS_DIR).splitlines():
            meta, path = line.split("\t", 1)
            _mode, kind, oid = meta.split()
            parts = tuple(path.split("/")[1:])
            if kind == "tree" and parts:
                self._trees[parts] = oid
            elif kind == "blob" and len(parts) == 4 and parts[3].endswith(".json"):
                self._days.setdefault((parts[0], parts[1], parts[2]), {})[parts[3]] = oid
                self._keys.add(parts[3].removesuffix(".json"))

    def __contains__(self, key: str) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def commit(self, record: EventRecord) -> str | None:
        """Commit `record` (signed, durable); its commit id, or None when already stored."""
        if record.key in self._keys:
            return None
        scratch = self.path / ".git" / "prvng-event.tmp"
        scratch.write_bytes(record.content)
        blob = self._blobs.ask(f"{scratch}\n")
        y, m, d = record.day
        day = {**self._days.get(record.day, {}), record.name: blob}
        trees = dict(self._trees)
        trees[(y, m, d)] = self._tree({n: ("blob", o) for n, o in day.items()})
        for prefix in ((y, m), (y,), ()):
            children = {p[-1]: ("tree", o) for p, o in trees.items() if p[:-1] == prefix}
            trees[prefix] = self._tree(children)
        root = self._tree({EVENTS_DIR: ("tree", trees.pop(()))})
        parents = ["-p", self.head] if self.head else []
        commit = git(
            self.path, "commit-tree", "-S", *parents, root, stdin=record.message.encode()
        ).strip()
        git(self.path, "update-ref", BRANCH, commit, self.head or ZERO)
        self.head, self._trees = commit, trees
        self._days[record.day] = day
        self._keys.add(record.key)
        return commit

    def _tree(self, entries: dict[str, tuple[str, str]]) -> str:
        lines = "".join(
            f"{'040000' if kind == 'tree' else '100644'} {kind} {oid}\t{name}\n"
            for name, (kind, oid) in entries.items()
        )
        return self._mktree.ask(lines + "\n")

    def close(self) -> None:
        self._blobs.close()
        self._mktree.close()

    def __enter__(self) -> AuditRepo:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
