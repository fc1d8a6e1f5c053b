"""The content-addressed cache of exported Nickel files: the one path every config read takes.

An entry's key is SHA-256 over the file's bytes, the bytes and paths of everything it
imports (transitively), the output format and the Nickel version. The key is computed from
the files on disk at every read, so an entry can never be served for content it was not
made from: an edit anywhere in the import graph changes the key. An export is stored only
if the key is the same after it as before (nothing changed while Nickel ran). Entries are
written to a temporary file and renamed, so a reader sees a whole entry or none.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import tempfile
import threading
from collections import deque
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic_core import from_json

from daemons.ncl_sync.evaluate import export_json, nickel_version
from daemons.ncl_sync.imports import ImportGraph, import_graph
from registry.errors import PlatformError

FORMAT = "json"
_KEY_VERSION = b"prvng-ncl-sync/1\0"
_ERRORS_KEPT = 20


def search_paths(workspace: Path, target: Path, extra: tuple[Path, ...]) -> tuple[Path, ...]:
    """Where Nickel looks for imports of `target`; also the roots imports are confined to."""
    return (workspace.resolve(), target.resolve().parent, *(p.resolve() for p in extra))


def cache_key(graph: ImportGraph, fmt: str = FORMAT) -> str:
    digest = hashlib.sha256(_KEY_VERSION)
    for part in (fmt, nickel_version()):
        digest.update(part.encode() + b"\0")
    digest.update(graph.digests[graph.root])
    for path in graph.imports:  # sorted by `import_graph`
        digest.update(str(path).encode() + b"\0")
        digest.update(graph.digests[path])
    return digest.hexdigest()


@dataclass
class LastGood:
    """The newest entry exported for a file, and whether the file has failed since."""

    key: str
    stale: bool = False
    error: str | None = None


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    errors: deque[dict[str, str]] = field(default_factory=lambda: deque(maxlen=_ERRORS_KEPT))


class ConfigCache:
    """Exports through Nickel at most `warm_concurrency` at a time; serves entries by key."""

    def __init__(
        self,
        directory: Path,
        *,
        extra_import_paths: tuple[Path, ...] = (),
        warm_concurrency: int = 4,
    ) -> None:
        self.directory = directory
        self.extra_import_paths = extra_import_paths
        self.warm_concurrency = max(1, warm_concurrency)
        self.stats = CacheStats()
        self.last_good: dict[Path, LastGood] = {}
        self._slots = threading.BoundedSemaphore(self.warm_concurrency)
        self._lock = threading.Lock()
        self.in_flight = 0
        self.peak_in_flight = 0
        """Nickel evaluations running now / at most so far (the pool's bound, observable)."""

    def entry_path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def key_for(self, workspace: Path, target: Path) -> str:
        """The key `target` has now (imports confined to the workspace and import paths)."""
        search = search_paths(workspace, target, self.extra_import_paths)
        return cache_key(import_graph(target, search))

    def put(self, key: str, text: str) -> None:
        """Store the entry for `key`."""
        self.put_file(f"{key[:2]}/{key}.json", text)

    def put_file(self, name: str, text: str) -> None:
        """Write a file under the cache atomically: a temporary file beside it, then rename."""
        path = self.directory / name
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:8]}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            Path(tmp).replace(path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def read(self, workspace: Path, target: Path) -> Any:
        """`target`'s value: from its entry when one matches the files now, else exported."""
        key = self.key_for(workspace, target)
        try:
            value = from_json(self.entry_path(key).read_bytes())
        except FileNotFoundError:
            return self._export(workspace, target, key)
        with self._lock:
            self.stats.hits += 1
            self.last_good[target] = LastGood(key)
        return value

    def _export(self, workspace: Path, target: Path, key: str) -> Any:
        search = search_paths(workspace, target, self.extra_import_paths)
        with self._slots:
            with self._lock:
                self.stats.misses += 1
                self.in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            try:
                text = export_json(target, workspace.resolve(), search)
            except PlatformError as exc:
                self._failed(target, exc)
                raise
            finally:
                with self._lock:
                    self.in_flight -= 1
        value = json.loads(text)
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        if self.key_for(workspace, target) == key:  # else a file changed while Nickel ran
            self.put(key, text)
            with self._lock:
                self.last_good[target] = LastGood(key)
        return value

    def _failed(self, target: Path, exc: PlatformError) -> None:
        with self._lock:
            self.stats.errors.append({"file": str(target), "error": exc.message})
            good = self.last_good.get(target)
            if good is not None:
                good.stale, good.error = True, exc.message

    def last_good_value(self, target: Path) -> tuple[Any, bool] | None:
        """The newest good export of `target` and whether it is stale (the file failed since)."""
        good = self.last_good.get(target)
        if good is None:
            return None
        try:
            return json.loads(self.entry_path(good.key).read_text(encoding="utf-8")), good.stale
        except FileNotFoundError:
            return None

    async def aread(self, workspace: Path, target: Path) -> Any:
        """`read` off the event loop."""
        return await asyncio.to_thread(self.read, workspace, target)

    async def warm(self, workspace: Path, targets: list[Path]) -> dict[Path, str]:
        """Export every target (at most `warm_concurrency` at once); the errors by file."""

        async def one(target: Path) -> tuple[Path, str | None]:
            try:
                await self.aread(workspace, target)
            except (PlatformError, OSError) as exc:
                return target, str(exc)
            return target, None

        results = await asyncio.gather(*(one(t) for t in targets))
        return {target: error for target, error in results if error is not None}

    def invalidate(self, workspace: Path, target: Path) -> bool:
        """Drop `target`'s current and last good entries; True if one existed."""
        keys = set()
        good = self.last_good.pop(target, None)
        if good is not None:
            keys.add(good.key)
        with suppress(PlatformError, OSError):  # deleted or invalid: drop the last good only
            keys.add(self.key_for(workspace, target))
        removed = False
        for key in keys:
            try:
                self.entry_path(key).unlink()
                removed = True
            except FileNotFoundError:
                continue
        return removed

    def summary(self) -> dict[str, Any]:
        """Entries and bytes on disk, with this process's hits, misses, errors and stale files."""
        sizes = [p.stat().st_size for p in self.directory.glob("??/*.json")]
        return {
            "directory": str(self.directory),
            "entries": len(sizes),
            "bytes": sum(sizes),
            "hits": self.stats.hits,
            "misses": self.stats.misses,
            "last_errors": list(self.stats.errors),
            "stale": sorted(str(p) for p, good in self.last_good.items() if good.stale),
        }
