"""`http`: one HTTP request, carrying the task's idempotency key, checked against a status.

It never reaches this machine, link-local networks or a metadata service unless allowed
(`destinations`), connects to the address it checked, and follows no redirect.

Retry advice follows HTTP semantics: a 5xx, 408, 429, a timeout or a connection failure may
succeed later; any other unexpected status will not.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from daemons.orchestrator.actions.base import ActionContext, ActionError
from daemons.orchestrator.actions.destinations import resolve_checked
from daemons.orchestrator.actions.secret_refs import SecretRef, SecretResolver

BODY_CAP = 16 * 1024
"""The largest body kept in the result (the journal records it)."""
_RETRYABLE_4XX = frozenset({408, 429})


class HttpParams(BaseModel):
    model_config = ConfigDict(
        extra="forbid", validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] = "GET"
    url: str = Field(min_length=1, max_length=8192)
    json_body: Any = Field(
        default=None,
        alias="json",
        description='Sent as a JSON body; any {"secret": name} in it is resolved at run time',
    )
    headers: dict[str, str | SecretRef] = Field(
        default_factory=dict, description='A value may be {"secret": name}'
    )
    expected_status: int | list[int] | None = Field(
        default=None, description="A status or a list of them; any 2xx when unset"
    )
    timeout_s: float = Field(default=30.0, gt=0, le=3600)

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise ValueError(f"not a valid URL: {exc}") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError(f"{url!r} must be an absolute http:// or https:// URL")
        return url

    def accepts(self, status: int) -> bool:
        if self.expected_status is None:
            return 200 <= status < 300
        if isinstance(self.expected_status, int):
            return status == self.expected_status
        return status in self.expected_status


def _body(response: httpx.Response) -> tuple[Any, bool]:
    """`(body, truncated)`: parsed JSON when it is JSON and fits, else (capped) text."""
    raw = response.content
    truncated = len(raw) > BODY_CAP
    if not truncated and "json" in response.headers.get("content-type", ""):
        try:
            return json.loads(raw), False
        except ValueError:
            pass  # claims JSON but is not: keep the text
    try:
        text = raw[:BODY_CAP].decode(response.encoding or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        text = raw[:BODY_CAP].decode("utf-8", errors="replace")
    return text, truncated


async def _pinned(
    raw_url: str, request: dict[str, Any], ctx: ActionContext
) -> tuple[httpx.URL, dict[str, Any]]:
    """The request aimed at the checked address of its host, with the name kept in the
    Host header and (for https) in SNI and certificate checks."""
    url = httpx.URL(raw_url)
    port = url.port or (443 if url.scheme == "https" else 80)
    host = url.raw_host.decode("ascii")
    address = await resolve_checked(host, port, ctx.settings)
    headers = {k: v for k, v in request["headers"].items() if k.lower() != "host"}
    headers["Host"] = url.netloc.decode("ascii")
    pinned = {**request, "headers": headers}
    if url.scheme == "https" and str(address) != host:
        pinned["extensions"] = {"sni_hostname": host}
    return url.copy_with(host=str(address)), pinned


class HttpAction:
    """Send a request; an unexpected status fails the attempt."""

    name: ClassVar[str] = "http"
    params_model: ClassVar[type[BaseModel]] = HttpParams

    async def run(self, params: BaseModel, ctx: ActionContext) -> dict[str, Any]:
        assert isinstance(params, HttpParams)
        secrets = SecretResolver(ctx.settings)
        headers = {name: secrets.value(value) for name, value in params.headers.items()}
        request: dict[str, Any] = {"headers": {**headers, "Idempotency-Key": ctx.idempotency_key}}
        if params.json_body is not None:
            request["json"] = secrets.json(params.json_body)
        try:
            return dict(secrets.scrub(await self._send(params, request, ctx)))
        except ActionError as exc:
            raise secrets.scrub_error(exc) from None

    async def _send(
        self, params: HttpParams, request: dict[str, Any], ctx: ActionContext
    ) -> dict[str, Any]:
        url, request = await _pinned(params.url, request, ctx)
        try:
            # No proxy from the environment, no redirect: the request goes to the checked
            # address only (a 3xx is an answer, judged by `expected_status`).
            async with httpx.AsyncClient(
                timeout=params.timeout_s, trust_env=False, follow_redirects=False
            ) as client:
                response = await client.request(params.method, url, **request)
        except httpx.TimeoutException:
            raise ActionError(
                f"{params.method} {params.url} timed out after {params.timeout_s:g}s",
                details={"url": params.url},
            ) from None
        except httpx.TransportError as exc:
            raise ActionError(
                f"{params.method} {params.url} failed: {exc or type(exc).__name__}",
                details={"url": params.url},
            ) from None
        body, truncated = _body(response)
        status = response.status_code
        ctx.log("info", f"{params.method} {params.url} -> {status}\n")
        if not params.accepts(status):
            retryable = status >= 500 or status in _RETRYABLE_4XX
            raise ActionError(
                f"{params.method} {params.url} answered {status} {response.reason_phrase}, "
                f"expected {params.expected_status or '2xx'}",
                retryable=retryable,
                details={"status": status, "body": body, "truncated": truncated},
            )
        return {"status": status, "body": body, "truncated": truncated}


ACTIONS = (HttpAction,)
