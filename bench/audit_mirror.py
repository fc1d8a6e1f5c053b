"""The audit mirror: signed commits per second and the dedup lookup at 100,000 events.

Baseline, in the same run and on the same machine: a bare signed `git commit` loop
(write the file, `git add`, `git commit -S`), i.e. what committing with porcelain costs.
The index is measured on a repository holding 100,000 event files (written unsigned with
`git fast-import`, since only the tree matters to the index): its rebuild (one `ls-tree`)
and a lookup, hit or miss. Floors from issue 11: ≥ 50 % of the bare loop, lookup ≤ 1 ms.
"""

from __future__ import annotations

import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.common import Sample, measure, print_table, verdict

N_COMMITS = 150
N_INDEX = 100_000
BAR_RATIO = 0.5
BAR_LOOKUP_US = 1000.0


def _event(i: int) -> bytes:
    return (
        f'{{"id":"ev-{i:06d}","at":"2026-12-02T01:00:00Z","outcome":"approved",'
        f'"actor":"alice","op_type":"server.delete","op_id":"op-{i:032x}"}}'
    ).encode()


def _mirror_rate(tmp: Path) -> Sample:
    from daemons.audit_mirror import AuditRepo, ensure_signing_key, parse_event

    key = ensure_signing_key(tmp / "keys")
    latencies = []
    with AuditRepo(tmp / "mirror", key) as repo:
        for i in range(N_COMMITS):
            record = parse_event(_event(i), None, datetime.now(UTC))
            start = time.perf_counter()
            repo.commit(record)
            latencies.append(time.perf_counter() - start)
    return Sample("audit mirror (plumbing, signed)", latencies)


def _bare_rate(tmp: Path) -> Sample:
    from daemons.audit_mirror import ensure_signing_key
    from daemons.audit_mirror.repo import git, git_env

    key = ensure_signing_key(tmp / "keys")
    repo = tmp / "bare-loop"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    for name, value in (
        ("user.name", "bench"),
        ("user.email", "bench@prvng"),
        ("gpg.format", "ssh"),
        ("user.signingkey", str(key.private_key)),
        ("core.fsync", "committed"),
    ):
        git(repo, "config", name, value)
    latencies = []
    env = git_env()
    for i in range(N_COMMITS):
        start = time.perf_counter()
        path = repo / f"ev-{i:06d}.json"
        path.write_bytes(_event(i))
        subprocess.run(["git", "-C", str(repo), "add", path.name], check=True, env=env)
        subprocess.run(
            ["git", "-C", str(repo), "commit", "-q", "-S", "-m", f"event {i}"], check=True, env=env
        )
        latencies.append(time.perf_counter() - start)
    return Sample("bare `git commit -S` loop", latencies)


def _index(tmp: Path) -> tuple[float, Sample]:
    from daemons.audit_mirror import AuditRepo, ensure_signing_key
    from daemons.audit_mirror.repo import git, git_env

    repo = tmp / "big"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    lines = ["commit refs/heads/main", "committer b <b@prvng> 0 +0000", "data 5", "bulk", ""]
    for i in range(N_INDEX):
        body = _event(i)
        day = f"{1 + i % 28:02d}"
        lines += [f"M 100644 inline events/2026/12/{day}/ev-{i:06d}.json", f"data {len(body)}"]
        lines.append(body.decode())
    subprocess.run(
        ["git", "-C", str(repo), "fast-import", "--quiet"],
        input=("\n".join(lines) + "\n").encode(),
        check=True,
        env=git_env(),
    )
    audit = AuditRepo(repo, ensure_signing_key(tmp / "keys"))
    start = time.perf_counter()
    audit.open()
    rebuild_s = time.perf_counter() - start
    assert len(audit) == N_INDEX
    keys = [f"ev-{random.randrange(2 * N_INDEX):06d}" for _ in range(10_000)]
    it = iter(keys)
    lookup = measure("dedup lookup (hit or miss)", lambda: next(it) in audit, 9_000, warmup=10)
    audit.close()
    return rebuild_s, lookup


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="prvng-bench-audit-mirror-") as name:
        tmp = Path(name)
        bare = _bare_rate(tmp)
        mirror = _mirror_rate(tmp)
        rebuild_s, lookup = _index(tmp)
    ratio = mirror.per_second / bare.per_second
    print_table(
        f"Audit mirror: {N_COMMITS} signed commits, events/s",
        ["measurement", "events/s", "median ms", "p99 ms"],
        [
            [s.name, f"{s.per_second:.1f}", f"{s.median_us / 1000:.1f}", f"{s.p99_us / 1000:.1f}"]
            for s in (bare, mirror)
        ],
    )
    print_table(
        f"Audit mirror: dedup index at {N_INDEX:,} events",
        ["measurement", "value"],
        [
            ["index rebuild (one ls-tree)", f"{rebuild_s * 1000:.0f} ms"],
            ["lookup median", f"{lookup.median_us:.2f} µs"],
            ["lookup p99", f"{lookup.p99_us:.2f} µs"],
        ],
    )
    rate_ok = ratio >= BAR_RATIO
    lookup_ok = lookup.p99_us <= BAR_LOOKUP_US
    print_table(
        "Audit mirror: bars",
        ["bar", "measured", "verdict"],
        [
            [f"≥ {BAR_RATIO:.0%} of the bare loop", f"{ratio:.0%}", verdict(rate_ok)],
            [
                f"lookup ≤ {BAR_LOOKUP_US / 1000:g} ms",
                f"{lookup.p99_us:.2f} µs",
                verdict(lookup_ok),
            ],
        ],
    )
    return 0 if rate_ok and lookup_ok else 1


if __name__ == "__main__":
    sys.exit(main())
