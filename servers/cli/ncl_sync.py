"""`prvng ncl-sync daemon|warm|invalidate|key|stats`: the config cache from the terminal.

Each command works on the cache directory itself (no platform needed); the cache logic is
`daemons.ncl_sync`, imported only when a command runs so `prvng`'s start-up stays light.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from servers.cli.output import dump_json
from servers.cli.parser import Command
from servers.cli.session import Session

if TYPE_CHECKING:
    from daemons.ncl_sync import ConfigCache


def _workspace_of(session: Session, file: Path, given: str | None) -> Path:
    """The workspace named, else PRVNG_CONFIG when it holds `file`, else the file's folder."""
    if given:
        return Path(given).resolve()
    config = session.settings.config_dir.resolve()
    return config if file.resolve().is_relative_to(config) else file.resolve().parent


def _cache(session: Session, workspace: Path, import_paths: list[str] | None = None) -> ConfigCache:
    from daemons.ncl_sync import NclSyncConfig, open_cache

    config = NclSyncConfig.load(workspace)
    extra = tuple(Path(p).resolve() for p in import_paths or ())
    if extra:
        config = config.model_copy(update={"extra_import_paths": config.extra_import_paths + extra})
    return open_cache(session.settings, config)


def _fail(session: Session, exc: Exception) -> int:
    from registry.errors import PlatformError
    from servers.cli.remote import failure_envelope

    if isinstance(exc, PlatformError):
        envelope = failure_envelope(exc.code, exc.message, None, exc.details)
    else:
        envelope = failure_envelope("invalid_input", str(exc), None, {})
    return session.report_failure(envelope)


def _file_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="a .ncl file")
    parser.add_argument("--workspace", metavar="DIR", help="its workspace (default: see docs)")


def _configure_daemon(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workspace", metavar="DIR", help="the workspace to watch (default: PRVNG_CONFIG)"
    )


def _daemon(session: Session, ns: argparse.Namespace) -> int:
    from daemons.ncl_sync import run_daemon

    return run_daemon(session.settings, Path(ns.workspace) if ns.workspace else None)


def _configure_warm(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR", help="the workspace whose .ncl files to export")


def _warm(session: Session, ns: argparse.Namespace) -> int:
    import asyncio  # here, not at the top: every `prvng` start would pay ~20 ms for it

    from daemons.ncl_sync import workspace_files

    workspace = Path(ns.dir).resolve()
    if not workspace.is_dir():
        return session.usage_error(f"{ns.dir} is not a directory")
    cache = _cache(session, workspace)
    files = workspace_files(workspace)
    errors = asyncio.run(cache.warm(workspace, files))
    summary: dict[str, Any] = {
        "files": len(files),
        "exported": cache.stats.misses,
        "cached": cache.stats.hits,
        "errors": {str(path): error for path, error in errors.items()},
    }
    print(dump_json(summary))
    return 2 if errors else 0


def _invalidate(session: Session, ns: argparse.Namespace) -> int:
    file = Path(ns.file)
    cache = _cache(session, _workspace_of(session, file, ns.workspace))
    removed = cache.invalidate(_workspace_of(session, file, ns.workspace), file.resolve())
    print(dump_json({"file": str(file.resolve()), "removed": removed}))
    return 0


def _configure_key(parser: argparse.ArgumentParser) -> None:
    _file_argument(parser)
    parser.add_argument(
        "--import-path",
        metavar="P",
        nargs="+",
        default=[],
        help="more directories imports may come from (beyond extra_import_paths)",
    )


def _key(session: Session, ns: argparse.Namespace) -> int:
    file = Path(ns.file)
    workspace = _workspace_of(session, file, ns.workspace)
    try:
        key = _cache(session, workspace, ns.import_path).key_for(workspace, file.resolve())
    except Exception as exc:  # PlatformError (confinement, missing import) or OSError
        return _fail(session, exc)
    print(key)
    return 0


def _stats(session: Session, _ns: argparse.Namespace) -> int:
    from daemons.ncl_sync import ConfigCache
    from daemons.ncl_sync.daemon import STATS_FILE

    cache = ConfigCache(session.settings.config_cache_dir)
    summary = cache.summary()
    for name in ("hits", "misses", "last_errors", "stale"):
        summary.pop(name)
    try:
        summary["daemon"] = json.loads((cache.directory / STATS_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        summary["daemon"] = None
    print(dump_json(summary))
    return 0


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    """`ncl-sync stats` takes only the global options."""


def ncl_sync_commands() -> list[Command]:
    return [
        Command(
            ("ncl-sync", "daemon"),
            "Watch a workspace and keep its config cache warm",
            _configure_daemon,
            _daemon,
        ),
        Command(("ncl-sync", "warm"), "Export every .ncl file of DIR", _configure_warm, _warm),
        Command(
            ("ncl-sync", "invalidate"),
            "Drop a file's cache entries",
            _file_argument,
            _invalidate,
        ),
        Command(("ncl-sync", "key"), "Print a file's cache key", _configure_key, _key),
        Command(
            ("ncl-sync", "stats"),
            "Entries and bytes in the cache, and the daemon's hits, misses and errors",
            _no_arguments,
            _stats,
        ),
    ]
