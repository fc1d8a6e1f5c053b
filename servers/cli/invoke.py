"""Where a CLI call runs: on a platform over HTTP, or in this process.

Remote when `--url`/`PRVNG_URL` is given or a platform runs on the same PRVNG_HOME (its
run file): two processes must never open one embedded database. Otherwise the registry
is built here and the call runs as the home's owner, or as the principal of
`PRVNG_API_KEY`/`--api-key` when one is given (never as more than that key).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from daemons.common.settings import Settings
from servers.cli.remote import post_tool, proves_run
from servers.runfile import read_run_file


@dataclass(frozen=True, slots=True)
class Target:
    """A platform URL and the key to send it, or `url=None` for in-process."""

    url: str | None
    api_key: str | None = None

    @property
    def remote(self) -> bool:
        return self.url is not None


def _admin_key(settings: Settings) -> str | None:
    try:
        return settings.admin_key_file.read_text().strip() or None
    except OSError:
        return None


def resolve_target(settings: Settings, url: str | None, api_key: str | None) -> Target:
    """Explicit URL, else the local platform's run file, else in-process.

    The home's admin key is only ever sent to the platform running on that home, and
    only once the listener at its URL has proved it is that platform (the run file may
    be stale, its port reused).
    """
    url = url or settings.url
    api_key = api_key or settings.api_key
    local = read_run_file(settings.run_file)
    if local is not None and url in (None, local.url) and not proves_run(local):
        print(
            f"prvng: {local.url} is not the platform that wrote {settings.run_file} "
            "(it failed the run file's challenge); sending it no credential",
            file=sys.stderr,
        )
        local = None
    if url is None and local is not None:
        url = local.url
    if url is None:
        return Target(None, api_key)  # in process, the call runs as this key (if any)
    url = url.rstrip("/")
    if api_key is None and local is not None and local.url.rstrip("/") == url:
        api_key = _admin_key(settings)
    return Target(url, api_key)


async def _progress(progress: float, total: float | None, message: str | None) -> None:
    done = f"{progress:g}/{total:g}" if total else f"{progress:g}"
    print(f"progress: {done} {message or ''}".rstrip(), file=sys.stderr, flush=True)


async def _invoke_here(
    settings: Settings, api_key: str | None, name: str, args: dict[str, Any], trace_id: str | None
) -> dict[str, Any]:
    from daemons.common.keystore import KeyStore
    from registry.context import CallTier
    from registry.envelope import Envelope
    from registry.errors import PlatformError
    from registry.trace import new_trace_id
    from servers.assembly import build_registry, finish_started_work

    keystore = KeyStore(settings)
    try:
        # A given key is checked by the pipeline (so a bad one is refused and audited).
        principal = None if api_key else keystore.owner()
        registry = build_registry(settings, keystore=keystore)
    except PlatformError as exc:
        return Envelope.failure(exc, trace_id or new_trace_id()).to_dict()
    try:
        envelope = await registry.invoke(
            name,
            args,
            principal=principal,
            credential=api_key,
            trace_id=trace_id,
            progress=_progress if sys.stderr.isatty() else None,
            tier=CallTier.CLI_LOCAL,
        )
        await finish_started_work(registry, _tell)
    finally:
        await registry.aclose()
    return envelope.to_dict()


def _tell(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _followed(tool: Mapping[str, Any], args: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The stream that shows this call's progress, per the tool's listing (`follow`).

    A call that blocks on a workflow whose id the caller left open gets one chosen here,
    so its stream can be opened before the call starts."""
    follow = tool.get("follow")
    if not follow or (follow["when"] is not None and args.get(follow["when"]) is not True):
        return None
    if args.get("plan") is True:
        return None  # a plan runs nothing: there is nothing to follow
    id_field = follow["id_field"]
    if id_field not in args:
        args[id_field] = f"cli-{os.urandom(6).hex()}"  # says who chose it
    return follow["stream"], {follow["filter_field"]: args[id_field], "until_finished": True}


def invoke(
    settings: Settings,
    target: Target,
    name: str,
    args: dict[str, Any],
    trace_id: str | None,
    tool: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Run one tool call where `target` says; the envelope as a dict, never raises.

    `tool` is the tool's listing entry (from the cache), which says how to show progress."""
    if target.url is not None:
        followed = _followed(tool, args) if tool and sys.stderr.isatty() else None
        if followed is None:
            return post_tool(target.url, name, args, api_key=target.api_key, trace_id=trace_id)
        from servers.cli.follow import following

        stream, stream_args = followed
        with following(target.url, target.api_key, stream, stream_args, sys.stderr):
            return post_tool(target.url, name, args, api_key=target.api_key, trace_id=trace_id)
    import asyncio  # in-process only: a remote call need not pay for it

    return asyncio.run(_invoke_here(settings, target.api_key, name, args, trace_id))


async def _stream_here(
    settings: Settings, name: str, args: dict[str, Any], show: Callable[[dict[str, Any]], None]
) -> dict[str, Any] | None:
    from daemons.common.keystore import KeyStore
    from registry.context import CallTier
    from registry.envelope import Envelope
    from registry.errors import PlatformError
    from registry.trace import new_trace_id
    from servers.assembly import build_registry, local_principal

    keystore = KeyStore(settings)
    trace_id = new_trace_id()
    try:
        async with build_registry(settings, keystore=keystore) as registry:
            principal = await local_principal(settings, registry, keystore)
            items = await registry.open_stream(
                name, args, principal=principal, trace_id=trace_id, tier=CallTier.CLI_LOCAL
            )
            async for item in items:
                show(item)
    except PlatformError as exc:
        return Envelope.failure(exc, trace_id).to_dict()
    return None


def stream(
    settings: Settings,
    target: Target,
    name: str,
    args: dict[str, Any],
    show: Callable[[dict[str, Any]], None],
) -> dict[str, Any] | None:
    """Read stream tool `name` where `target` says, `show`ing each item; None when it ended,
    else the failure envelope (the stream was refused or could not be opened)."""
    if target.url is None:
        import asyncio

        return asyncio.run(_stream_here(settings, name, args, show))
    import http.client

    from servers.cli.follow import StreamRefused, items, open_stream
    from servers.cli.remote import failure_envelope

    try:
        conn, response = open_stream(target.url, target.api_key, name, args)
    except StreamRefused as exc:
        return exc.envelope
    except (OSError, http.client.HTTPException) as exc:
        message = f"cannot reach the platform at {target.url} ({exc}); is it running?"
        return failure_envelope("unavailable", message, None, {"url": target.url})
    try:
        for item in items(response):
            show(item)
    finally:
        conn.close()
    return None
