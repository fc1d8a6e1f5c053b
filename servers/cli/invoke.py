"""Where a CLI call runs: on a platform over HTTP, or in this process.

Remote when `--url`/`PRVNG_URL` is given or a platform runs on the same PRVNG_HOME (its
run file): two processes must never open one embedded database. Otherwise the registry
is built here and the call runs as the home's owner.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Collection
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
        return Target(None)
    url = url.rstrip("/")
    if api_key is None and local is not None and local.url.rstrip("/") == url:
        api_key = _admin_key(settings)
    return Target(url, api_key)


async def _progress(progress: float, total: float | None, message: str | None) -> None:
    done = f"{progress:g}/{total:g}" if total else f"{progress:g}"
    print(f"progress: {done} {message or ''}".rstrip(), file=sys.stderr, flush=True)


async def _invoke_here(
    settings: Settings, name: str, args: dict[str, Any], trace_id: str | None
) -> dict[str, Any]:
    from registry.envelope import Envelope
    from registry.errors import PlatformError
    from registry.trace import new_trace_id
    from tools import build_registry
    from tools.auth.keystore import KeyStore

    keystore = KeyStore(settings)
    try:
        principal = keystore.owner()
    except PlatformError as exc:
        return Envelope.failure(exc, trace_id or new_trace_id()).to_dict()
    registry = build_registry(settings, keystore=keystore)
    try:
        envelope = await registry.invoke(
            name,
            args,
            principal=principal,
            trace_id=trace_id,
            progress=_progress if sys.stderr.isatty() else None,
        )
        await _run_local_workflows_to_the_end(registry)
    finally:
        await registry.aclose()
    return envelope.to_dict()


async def _run_local_workflows_to_the_end(registry: Any) -> None:
    """A one-shot CLI that started the workflow engine runs its unfinished workflows before
    exiting, since nothing else would run them until the engine's next start."""
    from daemons.orchestrator.model import WorkflowState
    from tools.workflow.orchestrator import OrchestratorHandle

    if not registry.resources.is_open(OrchestratorHandle):
        return
    api = (await registry.resources.get(OrchestratorHandle)).api
    for state in (WorkflowState.PENDING, WorkflowState.RUNNING, WorkflowState.ROLLING_BACK):
        for wf in (await api.list(state=state, limit=500)).workflows:
            print(
                f"running workflow {wf.id} ({wf.name}) to the end here, as no platform runs; "
                "Ctrl-C stops it (it resumes on the next start)",
                file=sys.stderr,
                flush=True,
            )
            await api.wait(wf.id, None)


def _workflow_waited_for(name: str, args: dict[str, Any], fields: Collection[str]) -> str | None:
    """The workflow a waiting call will block on, when its id is known in advance.

    A call that starts a workflow and waits (its input has `id` and `wait`) gets an id
    chosen here, so its progress can be followed before the call returns."""
    if name == "workflow.wait":
        return str(args["id"]) if "id" in args else None
    if args.get("wait") is not True or not {"id", "wait"} <= set(fields):
        return None
    if "id" not in args:
        args["id"] = f"cli-{os.urandom(6).hex()}"
    return str(args["id"])


def invoke(
    settings: Settings,
    target: Target,
    name: str,
    args: dict[str, Any],
    trace_id: str | None,
    fields: Collection[str] = (),
) -> dict[str, Any]:
    """Run one tool call where `target` says; the envelope as a dict, never raises.

    `fields` are the tool's input fields (from the cached listing)."""
    if target.url is not None:
        workflow_id = _workflow_waited_for(name, args, fields)
        if workflow_id is None or not sys.stderr.isatty():
            return post_tool(target.url, name, args, api_key=target.api_key, trace_id=trace_id)
        from servers.cli.progress import following

        with following(target.url, target.api_key, workflow_id, sys.stderr):
            return post_tool(target.url, name, args, api_key=target.api_key, trace_id=trace_id)
    import asyncio  # in-process only: a remote call need not pay for it

    return asyncio.run(_invoke_here(settings, name, args, trace_id))
