"""Where the platform keeps its data and how to reach its parts, from the environment.

Every path users rely on is named here once (see INTERFACES.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


def _xdg(var: str, fallback: str) -> Path:
    value = os.environ.get(var)
    return Path(value) if value else Path.home() / fallback


def _int_env(name: str, default: int) -> int:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None


def _float_env(name: str, default: float) -> float:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, got {value!r}") from None


@dataclass(frozen=True)
class HttpLimits:
    """What every listener grants one client, so slow or greedy ones cannot hold it."""

    max_connections: int = 1000
    """Open connections at most; one more is answered 503 `unavailable` and closed."""
    header_timeout_s: float = 10.0
    """From a connection's first byte (or its previous response) to a complete request head."""
    body_timeout_s: float = 60.0
    """From a complete head to the last byte of its body."""
    idle_timeout_s: int = 5
    """How long a keep-alive connection may sit idle between requests."""
    max_header_bytes: int = 64 * 1024
    """A request head larger than this is refused (400)."""

    @classmethod
    def from_env(cls) -> HttpLimits:
        return cls(
            max_connections=_int_env("PRVNG_HTTP_MAX_CONNECTIONS", cls.max_connections),
            header_timeout_s=_float_env("PRVNG_HTTP_HEADER_TIMEOUT_S", cls.header_timeout_s),
            body_timeout_s=_float_env("PRVNG_HTTP_BODY_TIMEOUT_S", cls.body_timeout_s),
            idle_timeout_s=_int_env("PRVNG_HTTP_IDLE_TIMEOUT_S", cls.idle_timeout_s),
            max_header_bytes=_int_env("PRVNG_HTTP_MAX_HEADER_BYTES", cls.max_header_bytes),
        )


def _flag_env(name: str) -> bool | None:
    """An on/off switch (`1`/`true`/`on`, `0`/`false`/`off`), or None when unset."""
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return None
    if value in ("1", "true", "on", "yes"):
        return True
    if value in ("0", "false", "off", "no"):
        return False
    raise ValueError(f"{name} must be on or off (1/0, true/false), got {value!r}")


def _list_env(name: str) -> tuple[str, ...]:
    """A comma-separated list (blank items dropped)."""
    return tuple(item.strip() for item in os.environ.get(name, "").split(",") if item.strip())


@dataclass(frozen=True)
class Settings:
    """Resolved platform settings; build with `Settings.from_env()`."""

    home: Path
    config_dir: Path
    cache_dir: Path
    url: str | None = None
    api_key: str | None = None
    surreal_url: str | None = None
    orchestrator_url: str | None = None
    nats_url: str | None = None
    """An existing NATS server (`PRVNG_NATS_URL`); unset, the platform starts its own."""
    max_body_bytes: int = 1 << 20
    rate_limit: str | None = None
    """Older form: one limit for every rate class (`PRVNG_RATE_LIMIT=100/s`)."""
    rate_limits: str | None = None
    """Per-class limits over the defaults (`PRVNG_RATE_LIMITS`, see docs/rate-limits.md)."""
    rate_limit_exempt: tuple[str, ...] = ()
    """Roles whose calls are never rate-limited (`PRVNG_RATE_LIMIT_EXEMPT`; none by default)."""
    audit_max_bytes: int = 10 << 20
    """The local audit log rotates before it would grow past this."""
    audit_max_age_s: int = 7 * 86400
    """... or once its first record is older than this."""
    audit_retention: int = 10
    """How many rotated audit logs are kept (the oldest is deleted)."""
    workflow_retention_s: int = 30 * 86400
    """A finished workflow is deleted (journal, snapshot, work dir) once this old ..."""
    workflow_retention_count: int = 10_000
    """... or once this many newer workflows have finished."""
    http: HttpLimits = field(default_factory=HttpLimits)
    """Per-client limits of every HTTP listener (platform daemon, orchestrator API)."""
    allowed_hosts: tuple[str, ...] = ()
    """Host names `/mcp` accepts beyond its listen address and loopback (DNS rebinding)."""
    allowed_origins: tuple[str, ...] = ()
    """Browser origins (`scheme://host[:port]`) `/mcp` accepts beyond its own."""
    mcp_stateless: bool = False
    """`/mcp` keeps no session (`PRVNG_MCP_STATELESS`): any instance answers any request."""
    mcp_json_response: bool | None = None
    """`/mcp` answers JSON, not SSE (`PRVNG_MCP_JSON_RESPONSE`; unset: when stateless)."""
    task_user: str = "nobody"
    """Who task processes run as when the platform runs as root (must exist)."""
    http_action_allow: tuple[str, ...] = ()
    """Networks (CIDRs) the `http` action may reach although they are internal."""
    ops_expire_interval_s: float = 30.0
    """How often the keeper marks pending ops past their approval lifetime expired."""

    @classmethod
    def from_env(cls) -> Settings:
        home = os.environ.get("PRVNG_HOME")
        config = os.environ.get("PRVNG_CONFIG")
        return cls(
            home=Path(home) if home else _xdg("XDG_DATA_HOME", ".local/share") / "provisioning",
            config_dir=Path(config) if config else PROJECT_ROOT / "config",
            cache_dir=_xdg("XDG_CACHE_HOME", ".cache") / "provisioning",
            url=os.environ.get("PRVNG_URL") or None,
            api_key=os.environ.get("PRVNG_API_KEY") or None,
            surreal_url=os.environ.get("PRVNG_SURREAL_URL") or None,
            orchestrator_url=os.environ.get("PRVNG_ORCHESTRATOR_URL") or None,
            nats_url=os.environ.get("PRVNG_NATS_URL") or None,
            max_body_bytes=_int_env("PRVNG_MAX_BODY_BYTES", 1 << 20),
            rate_limit=os.environ.get("PRVNG_RATE_LIMIT") or None,
            rate_limits=os.environ.get("PRVNG_RATE_LIMITS") or None,
            rate_limit_exempt=_list_env("PRVNG_RATE_LIMIT_EXEMPT"),
            audit_max_bytes=_int_env("PRVNG_AUDIT_MAX_BYTES", 10 << 20),
            audit_max_age_s=_int_env("PRVNG_AUDIT_MAX_AGE_S", 7 * 86400),
            audit_retention=_int_env("PRVNG_AUDIT_RETENTION", 10),
            workflow_retention_s=_int_env("PRVNG_WORKFLOW_RETENTION_S", 30 * 86400),
            workflow_retention_count=_int_env("PRVNG_WORKFLOW_RETENTION_COUNT", 10_000),
            http=HttpLimits.from_env(),
            allowed_hosts=_list_env("PRVNG_ALLOWED_HOSTS"),
            allowed_origins=_list_env("PRVNG_ALLOWED_ORIGINS"),
            mcp_stateless=bool(_flag_env("PRVNG_MCP_STATELESS")),
            mcp_json_response=_flag_env("PRVNG_MCP_JSON_RESPONSE"),
            task_user=os.environ.get("PRVNG_TASK_USER") or "nobody",
            http_action_allow=_list_env("PRVNG_HTTP_ACTION_ALLOW"),
            ops_expire_interval_s=_float_env("PRVNG_OPS_EXPIRE_INTERVAL_S", 30.0),
        )

    # Files and folders under PRVNG_HOME (INTERFACES.md).
    @property
    def credentials_dir(self) -> Path:
        return self.home / "credentials"

    @property
    def admin_key_file(self) -> Path:
        return self.credentials_dir / "admin-api-key"

    @property
    def keys_dir(self) -> Path:
        return self.home / "keys"

    @property
    def audit_dir(self) -> Path:
        return self.home / "audit"

    @property
    def journal_dir(self) -> Path:
        return self.home / "journal"

    @property
    def state_dir(self) -> Path:
        return self.home / "state"

    @property
    def nats_dir(self) -> Path:
        return self.home / "nats"

    @property
    def servers_dir(self) -> Path:
        return self.home / "servers"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def run_file(self) -> Path:
        """Left by a running platform: its pid and URL, so the CLI talks to it."""
        return self.home / "run" / "platform.json"

    @property
    def state_url(self) -> str:
        return self.surreal_url or f"surrealkv://{self.state_dir}"

    @property
    def config_cache_dir(self) -> Path:
        return self.cache_dir / "config-cache"
