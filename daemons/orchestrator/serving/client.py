"""`OrchestratorClient`: the `OrchestratorAPI` over HTTP, for split mode and the controller.

Error envelopes come back as the matching `PlatformError` subclass; a daemon that cannot
be reached is `Unavailable` (a slow one `Timeout`), so callers handle one error tree
whether the orchestrator runs in process or not.
"""

from __future__ import annotations

import asyncio
import builtins
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from types import TracebackType
from typing import Any

import httpx

from daemons.common.settings import Settings
from daemons.common.sse import SseParser
from daemons.orchestrator.model import (
    TERMINAL_WORKFLOW_STATES,
    TaskState,
    WorkflowSpec,
    WorkflowState,
)
from daemons.orchestrator.protocol import ProgressCallback
from daemons.orchestrator.serving.token import orchestrator_token
from daemons.orchestrator.views import (
    LOG_PAGE_DEFAULT,
    Event,
    TaskLogs,
    TaskView,
    WorkflowPage,
    WorkflowView,
)
from registry.envelope import Envelope
from registry.errors import Internal, Timeout, Unavailable

_LONG_POLL_S = 60.0


class OrchestratorClient:
    """Talks to one orchestrator daemon; use as `async with` or call `aclose()`."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout_s: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout_s,
            transport=transport,
        )

    @classmethod
    def from_settings(cls, settings: Settings, base_url: str) -> OrchestratorClient:
        """A client using the token this PRVNG_HOME's daemon accepts."""
        return cls(base_url, orchestrator_token(settings))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> OrchestratorClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # ---- the API -------------------------------------------------------------------------

    async def submit(self, spec: WorkflowSpec, workflow_id: str | None = None) -> WorkflowView:
        body = spec.model_dump(mode="json", exclude_defaults=True)
        params = None if workflow_id is None else {"id": workflow_id}
        data = await self._call("POST", "/v1/workflows", json=body, params=params)
        return WorkflowView.model_validate(data)

    async def check(self, spec: WorkflowSpec) -> None:
        body = spec.model_dump(mode="json", exclude_defaults=True)
        await self._call("POST", "/v1/workflow-checks", json=body)

    async def get(self, workflow_id: str) -> WorkflowView:
        return WorkflowView.model_validate(await self._call("GET", f"/v1/workflows/{workflow_id}"))

    async def list(
        self,
        state: WorkflowState | None = None,
        labels: Mapping[str, str] | None = None,
        name: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> WorkflowPage:
        params: dict[str, Any] = {"limit": limit}
        for key, value in (("state", state), ("name", name), ("cursor", cursor)):
            if value is not None:
                params[key] = str(value)
        params["label"] = [f"{key}={value}" for key, value in (labels or {}).items()]  # all
        data = await self._call("GET", "/v1/workflows", params=params)
        return WorkflowPage.model_validate(data)

    async def cancel(self, workflow_id: str) -> WorkflowView:
        return await self._command(workflow_id, "cancel")

    async def rollback(self, workflow_id: str) -> WorkflowView:
        return await self._command(workflow_id, "rollback")

    async def retry(self, workflow_id: str) -> WorkflowView:
        return await self._command(workflow_id, "retry")

    async def tasks(
        self, workflow_id: str, state: TaskState | None = None
    ) -> builtins.list[TaskView]:
        params = {} if state is None else {"state": str(state)}
        data = await self._call("GET", f"/v1/workflows/{workflow_id}/tasks", params=params)
        return [TaskView.model_validate(item) for item in data]

    async def task(self, workflow_id: str, task_id: str) -> TaskView:
        data = await self._call("GET", f"/v1/workflows/{workflow_id}/tasks/{task_id}")
        return TaskView.model_validate(data)

    async def logs(
        self,
        workflow_id: str,
        task_id: str,
        tail: int | None = None,
        offset: int | None = None,
        limit: int = LOG_PAGE_DEFAULT,
    ) -> TaskLogs:
        params: dict[str, int] = {"limit": limit}
        if tail is not None:
            params["tail"] = tail
        if offset is not None:
            params["offset"] = offset
        path = f"/v1/workflows/{workflow_id}/tasks/{task_id}/logs"
        return TaskLogs.model_validate(await self._call("GET", path, params=params))

    async def wait(
        self,
        workflow_id: str,
        timeout_s: float | None,
        on_progress: ProgressCallback | None = None,
    ) -> WorkflowView:
        if on_progress is not None:
            return await self._wait_streaming(workflow_id, timeout_s, on_progress)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            left = _LONG_POLL_S if deadline is None else max(0.0, deadline - time.monotonic())
            chunk = min(left, _LONG_POLL_S)
            data = await self._call(
                "GET",
                f"/v1/workflows/{workflow_id}/wait",
                params={"timeout_s": chunk},
                timeout_s=chunk + 30,
            )
            view = WorkflowView.model_validate(data)
            if view.state in TERMINAL_WORKFLOW_STATES or (deadline is not None and left <= chunk):
                return view

    async def events(
        self, since: int | None = None, workflow_id: str | None = None
    ) -> AsyncIterator[Event]:
        async for event in self._sse(since, workflow_id):
            if event is not None:
                yield event

    # ---- plumbing ------------------------------------------------------------------------

    async def _wait_streaming(
        self, workflow_id: str, timeout_s: float | None, on_progress: ProgressCallback
    ) -> WorkflowView:
        stream = self._sse(None, workflow_id)
        try:
            async with asyncio.timeout(timeout_s):
                await anext(stream)  # subscribed: nothing from here on is missed
                view = await self.get(workflow_id)
                if view.state in TERMINAL_WORKFLOW_STATES:
                    return view
                async for event in stream:
                    if event is None:
                        continue
                    await on_progress(event)
                    if event.kind == "workflow" and event.state in TERMINAL_WORKFLOW_STATES:
                        break
        except TimeoutError:
            pass  # not finished in time: answer the current state
        finally:
            await stream.aclose()
        return await self.get(workflow_id)

    async def _sse(
        self, since: int | None, workflow_id: str | None
    ) -> AsyncGenerator[Event | None, None]:
        """Events from `/v1/events`; a None first, once the server has subscribed."""
        params: dict[str, Any] = {}
        if since is not None:
            params["since"] = since
        if workflow_id is not None:
            params["workflow_id"] = workflow_id
        timeout = httpx.Timeout(30.0, read=None)
        try:
            async with self._http.stream(
                "GET", "/v1/events", params=params, timeout=timeout
            ) as response:
                if response.status_code != 200:
                    await response.aread()
                    _envelope(response).raise_for_error()
                    raise Internal(f"orchestrator answered HTTP {response.status_code}")
                parser = SseParser()
                async for line in response.aiter_lines():
                    if line.startswith(": connected"):
                        yield None
                    elif (message := parser.feed(line)) is not None:
                        yield Event.model_validate_json(message.data)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        raise Unavailable(
            f"the orchestrator at {self.base_url} closed the event stream (stopping?)"
        )

    async def _command(self, workflow_id: str, command: str) -> WorkflowView:
        data = await self._call("POST", f"/v1/workflows/{workflow_id}/{command}")
        return WorkflowView.model_validate(data)

    async def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        timeout_s: float | None = None,
    ) -> Any:
        extra: dict[str, Any] = {} if timeout_s is None else {"timeout": timeout_s}
        try:
            response = await self._http.request(method, path, json=json, params=params, **extra)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        return _envelope(response).raise_for_error()

    def _unreachable(self, exc: httpx.TransportError) -> Unavailable:
        if isinstance(exc, httpx.TimeoutException):
            return Timeout(f"the orchestrator at {self.base_url} did not answer in time")
        return Unavailable(
            f"cannot reach the orchestrator at {self.base_url} ({exc or type(exc).__name__}); "
            "is it running? Start it with `prvng daemon orchestrator`",
            details={"url": self.base_url},
        )


def _envelope(response: httpx.Response) -> Envelope:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or "ok" not in body:
        raise Internal(
            f"the orchestrator answered HTTP {response.status_code} without an envelope",
            details={"status": response.status_code},
        )
    return Envelope.from_dict(body)
