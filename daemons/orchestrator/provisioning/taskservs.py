"""The taskserv catalog: `<config>/taskservs/<name>/` holds `taskserv.ncl` and two scripts.

`taskserv.ncl` is Nickel: `name`, `description`, `version`, `settings` (a record contract
whose every field has a default) and `health`. Settings given by a user are checked by
Nickel against that contract, so a taskserv's rules live in one place, next to its scripts.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from daemons.common.settings import PROJECT_ROOT, Settings
from daemons.ncl_sync import ConfigCache, shared_cache
from registry.errors import InvalidInput, NotFound

TASKSERV_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_UNSAFE_PATH = re.compile(r'["%\\\n]')


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HttpHealth(_Strict):
    """Healthy when GET http://127.0.0.1:<settings[port_setting]><path> answers `status`."""

    kind: Literal["http"]
    path: str = "/"
    port_setting: str = "port"
    status: int = 200
    timeout_s: float = Field(default=15, gt=0, le=600)


class CommandHealth(_Strict):
    """Healthy when `command` (run by /bin/sh in the sandbox) exits 0 [and prints `expect`]."""

    kind: Literal["command"]
    command: str = Field(min_length=1)
    expect: str | None = None
    timeout_s: float = Field(default=15, gt=0, le=600)


HealthCheck = Annotated[HttpHealth | CommandHealth, Field(discriminator="kind")]


class _Meta(_Strict):
    name: str
    description: str
    version: str
    settings: dict[str, Any]
    health: HealthCheck


@dataclass(frozen=True, slots=True)
class Taskserv:
    """A catalog entry with its settings resolved (defaults merged, contracts checked)."""

    name: str
    description: str
    version: str
    directory: Path
    settings: dict[str, Any]
    defaults: dict[str, Any]
    health: HttpHealth | CommandHealth

    @property
    def install_script(self) -> Path:
        return self.directory / "install.sh"

    @property
    def remove_script(self) -> Path:
        return self.directory / "remove.sh"

    def describe(self) -> dict[str, Any]:
        """The JSON-able catalog view (for listings)."""
        return {
            "name": self.name,
            "description": self.description,
            "version": self.version,
            "settings": self.defaults,
            "health": self.health.model_dump(),
        }


BUNDLED_CATALOG = PROJECT_ROOT / "config" / "taskservs"


def catalog_dirs(config_dir: Path) -> list[Path]:
    """Where taskservs are found: the workspace's own `taskservs/` first, then the bundled."""
    own = config_dir / "taskservs"
    return [own] if own.resolve() == BUNDLED_CATALOG.resolve() else [own, BUNDLED_CATALOG]


def _entries(config_dir: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for root in reversed(catalog_dirs(config_dir)):  # the workspace's entries win
        for ncl in root.glob("*/taskserv.ncl"):
            found[ncl.parent.name] = ncl.parent
    return dict(sorted(found.items()))


@dataclass(frozen=True, slots=True)
class Catalog:
    """Where taskservs are found (a workspace's config dir, then the bundled catalog) and
    the ncl-sync cache their definitions are read through, as every config read is."""

    config_dir: Path
    cache: ConfigCache


def catalog_for(settings: Settings) -> Catalog:
    """The catalog of `settings`' workspace, read through this process's shared cache."""
    return Catalog(settings.config_dir, shared_cache(settings))


def list_taskservs(catalog: Catalog) -> list[Taskserv]:
    """Every taskserv in the catalog, with default settings, by name."""
    return [load_taskserv(catalog, name) for name in _entries(catalog.config_dir)]


def load_taskserv(catalog: Catalog, name: str, settings: dict[str, Any] | None = None) -> Taskserv:
    """Taskserv `name` with `settings` checked against its contract (`InvalidInput` if bad)."""
    directory = _entry_dir(catalog.config_dir, name)
    ncl = directory / "taskserv.ncl"
    try:
        meta = _Meta.model_validate(_definition(catalog.cache, ncl, directory, name))
    except ValidationError as exc:
        raise InvalidInput(
            f"{ncl} does not describe a taskserv: {exc.errors()[0]['msg']} at "
            f"{'.'.join(map(str, exc.errors()[0]['loc']))}",
            details={"taskserv": name, "errors": json.loads(exc.json())},
        ) from None
    if meta.name != name:
        raise InvalidInput(f"{ncl} names itself {meta.name!r}; rename it or its directory")
    for script in ("install.sh", "remove.sh"):
        if not (directory / script).is_file():
            raise InvalidInput(f"taskserv {name!r} has no {script} in {directory}")
    if isinstance(meta.health, HttpHealth) and meta.health.port_setting not in meta.settings:
        raise InvalidInput(
            f"taskserv {name!r}: its health check reads setting "
            f"{meta.health.port_setting!r}, which its settings do not define"
        )
    resolved = meta.settings
    if settings:
        resolved = _check_settings(ncl, directory, name, settings, meta.settings)
    return Taskserv(
        name=name,
        description=meta.description,
        version=meta.version,
        directory=directory,
        settings=resolved,
        defaults=meta.settings,
        health=meta.health,
    )


def _entry_dir(config_dir: Path, name: str) -> Path:
    entries = _entries(config_dir)
    directory = entries.get(name) if TASKSERV_NAME.fullmatch(name) else None
    if directory is None:
        available = list(entries)
        raise NotFound(
            f"no taskserv named {name!r}; available: {', '.join(available) or 'none'} "
            f"(catalogs: {', '.join(map(str, catalog_dirs(config_dir)))})",
            details={"taskserv": name, "available": available},
        )
    if _UNSAFE_PATH.search(str(directory.resolve())):
        raise InvalidInput(f"the catalog path {directory} has characters Nickel imports refuse")
    return directory.resolve()


def _check_settings(
    ncl: Path, directory: Path, name: str, settings: dict[str, Any], defaults: dict[str, Any]
) -> Any:
    data = json.dumps(settings).replace("\\", "\\\\").replace('"', '\\"').replace("%", "\\%")
    expr = f'let t = import "{ncl}" in (std.deserialize \'Json "{data}") | t.settings'
    try:
        return _evaluate(expr, directory, name, settings=settings)
    except InvalidInput as exc:
        bad = re.search(r"value of `([^`]+)`", exc.message)
        hint = (
            f" (given {settings[bad.group(1)]!r})"
            if bad and bad.group(1) in settings
            else f" (its settings: {', '.join(defaults) or 'none'})"
        )
        raise InvalidInput(exc.message + hint, details=exc.details) from None


def _definition(cache: ConfigCache, ncl: Path, directory: Path, name: str) -> Any:
    """`taskserv.ncl`'s value from the cache; its imports stay inside its catalog's parent
    (the config dir whose `schemas/` it imports)."""
    try:
        return cache.read(directory.parent.parent, ncl)
    except InvalidInput as exc:
        raise InvalidInput(
            f"taskserv {name!r}: cannot evaluate taskserv.ncl: {exc.message}",
            details={"taskserv": name, **exc.details},
        ) from None


def _evaluate(expr: str, directory: Path, name: str, settings: dict[str, Any] | None = None) -> Any:
    import nickel

    try:
        return json.loads(nickel.run(expr, [str(directory.parent.parent), str(directory)]))
    except nickel.NickelException as exc:
        text = _ANSI.sub("", str(exc)).strip()
        what = "bad settings" if settings is not None else "cannot evaluate taskserv.ncl"
        details: dict[str, Any] = {"taskserv": name, "nickel_error": text}
        if settings is not None:
            details["settings"] = settings
        raise InvalidInput(
            f"taskserv {name!r}: {what}: {_summary(text)}", details=details
        ) from None


def _summary(text: str) -> str:
    """Nickel's headline (`contract broken by the value of `port``) and its follow-up lines."""
    lines: list[str] = []
    for line in text.splitlines():
        if "┌─" in line or (lines and not line.strip()):
            break
        lines.append(line.strip().removeprefix("error:").strip())
    return "; ".join(line for line in lines if line) or text[:200]
