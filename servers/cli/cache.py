"""The CLI's listing cache: the `tools.list` data as JSON, so `prvng` starts fast.

Building the listing imports every tool module and pydantic (~0.3 s); the cache keeps
that off the start-up path. Its file name carries a fingerprint of the code that made
it (size and mtime of every `.py` file in `registry/` and `tools/`, plus the installed
versions), so an edit or an upgrade rebuilds it. Stdlib only, on purpose.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from daemons.common.files import atomic_write
from daemons.common.settings import Settings

CACHE_PREFIX = "cli-listing-"
_SOURCE_PACKAGES = ("registry", "tools")
_VERSIONED_DISTS = ("provisioning_platform", "pydantic")


@dataclass
class Catalog:
    """The cached listing plus the error → exit-code table the CLI needs without pydantic."""

    tools: list[dict[str, Any]]
    exit_codes: dict[str, int]
    by_name: dict[str, dict[str, Any]] = field(init=False)

    def __post_init__(self) -> None:
        self.by_name = {tool["name"]: tool for tool in self.tools}

    @property
    def listing(self) -> dict[str, Any]:
        """The `tools.list` data."""
        return {"tools": self.tools}

    def exit_code(self, code: str | None) -> int:
        """The exit status for an error code (0 for success, 1 for an unknown code)."""
        return 0 if code is None else self.exit_codes.get(code, 1)


def _source_roots() -> list[Path]:
    roots: list[Path] = []
    for package in _SOURCE_PACKAGES:
        spec = find_spec(package)
        if spec is not None and spec.submodule_search_locations:
            roots.extend(Path(p) for p in spec.submodule_search_locations)
    return roots


def _dist_versions() -> list[str]:
    """The dist-info names (`pydantic-2.14.0.dist-info`) of the packages the listing depends on.

    A directory listing of site-packages costs far less than `importlib.metadata`.
    """
    found: list[str] = []
    for entry in sys.path:
        try:
            with os.scandir(entry or ".") as entries:
                names = [e.name for e in entries]
        except OSError:
            continue
        found.extend(
            name
            for name in names
            if name.endswith(".dist-info") and name.split("-", 1)[0] in _VERSIONED_DISTS
        )
    return sorted(set(found))


def _py_files(root: Path) -> Iterable[os.DirEntry[str]]:
    with os.scandir(root) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False) and entry.name != "__pycache__":
                yield from _py_files(Path(entry.path))
            elif entry.name.endswith(".py"):
                yield entry


def fingerprint(roots: Iterable[Path], versions: Iterable[str]) -> str:
    """A short hash over (path, size, mtime_ns) of every .py file under `roots` and `versions`."""
    digest = hashlib.sha256()
    for root in roots:
        for entry in sorted(_py_files(root), key=lambda e: e.path):
            stat = entry.stat()
            digest.update(f"{entry.path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    for version in versions:
        digest.update(f"{version}\n".encode())
    return digest.hexdigest()[:20]


def cache_path(settings: Settings) -> Path:
    """Where the listing of the code as it is now lives."""
    key = fingerprint(_source_roots(), _dist_versions())
    return settings.cache_dir / f"{CACHE_PREFIX}{key}.json"


def _parse(raw: bytes) -> Catalog | None:
    try:
        body = json.loads(raw)
        catalog = Catalog(list(body["listing"]["tools"]), dict(body["exit_codes"]))
    except (ValueError, KeyError, TypeError):
        return None
    return catalog


def _build(settings: Settings) -> dict[str, Any]:
    """Import the registry for real and take its listing (the slow path, once per change)."""
    import asyncio

    from registry.errors import ERROR_TABLE
    from servers.assembly import build_registry

    registry = build_registry(settings)
    try:
        listing = registry.listing().model_dump(mode="json")
    finally:
        asyncio.run(registry.aclose())
    return {
        "listing": listing,
        "exit_codes": {code.value: row.exit_code for code, row in ERROR_TABLE.items()},
    }


def load_catalog(settings: Settings) -> Catalog:
    """The listing from the cache, rebuilt when missing, corrupt or made by other code."""
    path = cache_path(settings)
    try:
        catalog = _parse(path.read_bytes())
    except OSError:
        catalog = None
    if catalog is not None:
        return catalog
    body = _build(settings)
    try:
        atomic_write(path, json.dumps(body, separators=(",", ":")).encode(), mode=0o644)
        for stale in path.parent.glob(f"{CACHE_PREFIX}*.json"):
            if stale != path:
                stale.unlink(missing_ok=True)
    except OSError:
        pass  # an unwritable cache dir costs speed, not correctness
    return Catalog(body["listing"]["tools"], body["exit_codes"])
