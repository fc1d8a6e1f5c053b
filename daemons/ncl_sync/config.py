"""ncl-sync's settings, from `ncl-sync.ncl` in the workspace config dir (defaults if absent)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import Field

from registry import StrictModel

FILE_NAME = "ncl-sync.ncl"


class NclSyncConfig(StrictModel):
    idle_timeout_secs: int = Field(
        default=0, ge=0, description="Stop when idle this long; 0: never"
    )
    sync_poll_interval_ms: int = Field(default=200, ge=10, le=10_000)
    warm_concurrency: int = Field(default=4, ge=1, le=64)
    extra_import_paths: tuple[Path, ...] = ()

    @classmethod
    def load(cls, config_dir: Path) -> NclSyncConfig:
        """Read `config_dir/ncl-sync.ncl`; relative import paths are relative to `config_dir`."""
        import nickel

        path = config_dir / FILE_NAME
        if not path.is_file():
            return cls()
        raw = json.loads(nickel.run(f'import "{path.resolve()}"', []))
        config = cls.model_validate(raw)
        paths = tuple((config_dir / p).resolve() for p in config.extra_import_paths)
        return config.model_copy(update={"extra_import_paths": paths})
