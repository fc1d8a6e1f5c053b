"""The invocation pipeline: one middleware chain that every call from every tier runs.

    observe ( audit ( validate input → identify principal → authorize → rate limit
                      → approval → handler → validate output ) )

Each step is a middleware `(call, call_next)`; the chain is composed once per registry,
so a call costs a handful of awaits on top of the handler. A streaming call runs the same
chain; its terminal opens the tool's stream instead of running the handler, and every
item is checked against the stream's item model as it goes out.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pydantic_core
from pydantic import BaseModel, ValidationError

from registry.approval import ApprovalGate
from registry.audit import ALLOW, DENY, AuditRecord, AuditSink, args_digest, big_args_digest
from registry.bulk import SLICE, is_sliceable, validate_in_steps
from registry.context import CallTier, ProgressSink, ToolContext
from registry.errors import (
    ErrorCode,
    Internal,
    InvalidInput,
    PlatformError,
    RateLimited,
    Unauthenticated,
)
from registry.listing import ToolListing
from registry.model import Risk, Target, ToolSpec
from registry.principal import Authenticator, Authorizer, Principal
from registry.ratelimit import RateLimiter
from registry.resources import Resources
from registry.stats import CallStats
from registry.timestamps import utc_now_iso


@dataclass(slots=True)
class Invocation:
    """One call travelling through the pipeline."""

    spec: ToolSpec
    args: dict[str, Any]
    trace_id: str
    principal: Principal | None = None
    credential: str | None = None
    progress_sink: ProgressSink | None = None
    streaming: bool = False
    """Open the tool's stream (`ToolSpec.stream`) rather than run its handler."""
    input: BaseModel | None = None
    big_input: bool = False
    """Past `BIG_INPUT` values: validated and digested in bounded steps, off the loop."""
    started: float = field(default_factory=time.perf_counter)
    tier: CallTier | None = None
    targets: Sequence[Target] | None = None
    """What the authorizer allowed the call on (None until it did)."""


Next = Callable[[Invocation], Awaitable[Any]]


class Middleware(Protocol):
    async def __call__(self, call: Invocation, call_next: Next) -> Any: ...


def compose(middlewares: Sequence[Middleware], terminal: Next) -> Next:
    """Fold the middlewares around `terminal`, first one outermost."""
    chain = terminal
    for middleware in reversed(middlewares):
        chain = _bind(middleware, chain)
    return chain


def _bind(middleware: Middleware, call_next: Next) -> Next:
    async def step(call: Invocation) -> Any:
        return await middleware(call, call_next)

    return step


def _format_validation_error(tool: str, exc: ValidationError) -> InvalidInput:
    errors = [
        {
            "loc": ".".join(str(part) for part in err["loc"]) or "(input)",
            "msg": err["msg"],
            "type": err["type"],
        }
        for err in exc.errors(include_url=False, include_context=False, include_input=False)
    ]
    summary = "; ".join(f"{e['loc']}: {e['msg']}" for e in errors[:5])
    return InvalidInput(f"invalid input for {tool}: {summary}", details={"errors": errors})


MAX_INPUT_DEPTH = 64
"""Deepest nesting of arrays and objects in a tool's input (the input object is depth 1);
the tiers' JSON parser (`servers.jsontext.MAX_DEPTH`) refuses the same."""


_CONTAINERS = (dict, list)
BIG_INPUT = 2_000
"""Values (array items and object members, nested ones included) past which an input is
checked off the event loop: a small call stays on the fast path."""


def _scan(node: dict[str, Any] | list[Any], levels: int, budget: int) -> int:
    """What is left of `budget` values after looking at `node`: -1 when it nests deeper
    than `levels`, 0 when the budget ran out first (a big input: `_within` decides)."""
    children = node.values() if type(node) is dict else node
    budget -= len(children)
    if budget <= 0:
        return 0
    for child in children:
        if isinstance(child, _CONTAINERS):
            if levels <= 1:
                return -1
            budget = _scan(child, levels - 1, budget)
            if budget <= 0:
                return budget
    return budget


def _within(node: dict[str, Any] | list[Any], levels: int) -> bool:
    """Whether `node` holds at most `levels` levels of arrays/objects, itself included
    (recursion bounded by `levels`; a flat input costs one loop)."""
    for child in node.values() if type(node) is dict else node:
        if isinstance(child, _CONTAINERS) and (levels <= 1 or not _within(child, levels - 1)):
            return False
    return True


async def _within_steps(args: dict[str, Any], levels: int) -> bool:
    """`_within` for a big input: a long top-level list a slice at a time, the event
    loop running in between."""
    for value in args.values():
        if not isinstance(value, _CONTAINERS):
            continue
        if levels <= 1:
            return False
        if type(value) is not list or len(value) <= SLICE:
            if not _within(value, levels - 1):
                return False
            continue
        for start in range(0, len(value), SLICE):
            if not _within(value[start : start + SLICE], levels - 1):
                return False
            await asyncio.sleep(0)
    return True


class ValidateInput:
    """The input checked against the tool's model with JSON's types, as its published
    schema says: strict JSON-mode validation, so `0` is no boolean and `false` no integer,
    while enums and dates still come as the strings JSON carries."""

    async def __call__(self, call: Invocation, call_next: Next) -> Any:
        left = _scan(call.args, MAX_INPUT_DEPTH, BIG_INPUT)
        if left == 0:
            call.big_input = True
            left = 1 if await _within_steps(call.args, MAX_INPUT_DEPTH) else -1
        if left < 0:
            raise InvalidInput(
                f"the input of {call.spec.name} nests arrays and objects more than "
                f"{MAX_INPUT_DEPTH} deep",
                details={"max_depth": MAX_INPUT_DEPTH},
            )
        model = call.spec.input_model
        try:
            if call.big_input:
                call.input = await _validate_big(model, call.args)
            else:
                call.input = _validate(model, call.args)
        except ValidationError as exc:
            raise _format_validation_error(call.spec.name, exc) from None
        except pydantic_core.PydanticSerializationError as exc:
            raise InvalidInput(f"the input of {call.spec.name} is not JSON: {exc}") from None
        return await call_next(call)


def _validate(model: type[BaseModel], args: dict[str, Any]) -> BaseModel:
    try:
        return model.model_validate_json(pydantic_core.to_json(args), strict=True)
    except ValidationError as exc:
        fixed = copy.deepcopy(args)  # the caller's dict stays as it was
        if not _integral_floats_to_ints(fixed, exc):
            raise
        return model.model_validate_json(pydantic_core.to_json(fixed), strict=True)


async def _validate_big(model: type[BaseModel], args: dict[str, Any]) -> BaseModel:
    """`_validate` in bounded steps (see `bulk`), or else in a worker thread."""
    if not is_sliceable(model, args):
        return await asyncio.to_thread(_validate, model, args)
    try:
        return await validate_in_steps(model, args)
    except ValidationError as exc:
        fixed = await asyncio.to_thread(copy.deepcopy, args)
        if not _integral_floats_to_ints(fixed, exc):
            raise
        return await validate_in_steps(model, fixed)


def _integral_floats_to_ints(args: dict[str, Any], exc: ValidationError) -> bool:
    """Turn `5.0` where an integer was refused into `5`: JSON Schema's `integer` is any
    number with no fraction, so a schema-valid `5.0` must pass. True when one changed."""
    changed = False
    for error in exc.errors(include_url=False, include_context=False):
        if error["type"] != "int_type" or not error["loc"]:
            continue
        parent: Any = None
        node: Any = args
        try:
            for part in error["loc"]:
                parent, node = node, node[part]
        except (KeyError, IndexError, TypeError):
            continue  # a loc through a union member names no place in the input
        if isinstance(node, float) and node.is_integer():
            parent[error["loc"][-1]] = int(node)
            changed = True
    return changed


class IdentifyPrincipal:
    def __init__(self, authenticator: Authenticator) -> None:
        self._authenticator = authenticator

    async def __call__(self, call: Invocation, call_next: Next) -> Any:
        if call.principal is None:
            if not call.credential:
                raise Unauthenticated(
                    "no credentials: send 'Authorization: Bearer <api key>' "
                    "(the bootstrap key is in PRVNG_HOME/credentials/admin-api-key)"
                )
            call.principal = await self._authenticator.authenticate(call.credential)
            if call.principal is None:
                raise Unauthenticated("the API key or session token is not valid")
        return await call_next(call)


class Authorize:
    def __init__(self, authorizer: Authorizer, resources: Resources) -> None:
        self._authorizer = authorizer
        self._resources = resources

    async def __call__(self, call: Invocation, call_next: Next) -> Any:
        assert call.principal is not None
        targets = await self._authorizer.authorize(
            call.principal, call.spec, call.input, self._resources
        )
        call.targets = targets or ()
        return await call_next(call)


class RateLimit:
    def __init__(self, limiter: RateLimiter) -> None:
        self._limiter = limiter

    async def __call__(self, call: Invocation, call_next: Next) -> Any:
        assert call.principal is not None
        await self._limiter.check(call.principal, call.spec, call.trace_id)
        return await call_next(call)


class Approval:
    def __init__(self, gate: ApprovalGate) -> None:
        self._gate = gate

    async def __call__(self, call: Invocation, call_next: Next) -> Any:
        if call.spec.requires_approval:
            assert call.principal is not None
            await self._gate.check(call.spec, call.principal, call.args)
        return await call_next(call)


_REFUSALS = frozenset(
    {
        ErrorCode.UNAUTHENTICATED,
        ErrorCode.FORBIDDEN,
        ErrorCode.RATE_LIMITED,
        ErrorCode.APPROVAL_REQUIRED,
    }
)


class Observe:
    """Counts every call by outcome and times it (the outermost step)."""

    def __init__(self, stats: CallStats) -> None:
        self._stats = stats

    async def __call__(self, call: Invocation, call_next: Next) -> Any:
        outcome = "ok"
        try:
            return await call_next(call)
        except PlatformError as exc:
            outcome = exc.code.value
            raise
        except Exception:
            outcome = ErrorCode.INTERNAL.value
            raise
        finally:
            self._stats.record(call.spec.name, outcome, time.perf_counter() - call.started)


class Audit:
    """Records every mutation (whatever its outcome), every stream opened, every refusal."""

    def __init__(self, sink: AuditSink) -> None:
        self._sink = sink

    async def __call__(self, call: Invocation, call_next: Next) -> Any:
        try:
            result = await call_next(call)
        except PlatformError as exc:
            summed = isinstance(exc, RateLimited) and exc.summed  # the limiter writes those
            if (call.spec.risk is not Risk.READ or exc.code in _REFUSALS) and not summed:
                await self._write(call, exc.code.value, exc)
            raise
        except Exception:
            await self._write(call, ErrorCode.INTERNAL.value)
            raise
        if call.spec.risk is not Risk.READ or call.streaming:
            await self._write(call, "plan" if call.args.get("plan") is True else "ok")
        return result

    async def _write(
        self, call: Invocation, outcome: str, exc: PlatformError | None = None
    ) -> None:
        refused = exc is not None and exc.code in _REFUSALS
        args = _audited_args(call)
        digest = await big_args_digest(args) if call.big_input else args_digest(args)
        await self._sink.record(
            AuditRecord.new(
                timestamp=utc_now_iso(),
                trace_id=call.trace_id,
                tool=call.spec.name,
                risk=call.spec.risk.value,
                principal=call.principal.id if call.principal else None,
                outcome=outcome,
                args_digest=digest,
                duration_ms=round((time.perf_counter() - call.started) * 1000, 3),
                tier=call.tier,
                target=_target(call, exc),
                decision=DENY if refused else ALLOW if call.targets is not None else None,
            )
        )


def _target(call: Invocation, exc: PlatformError | None) -> str | None:
    """`kind:id` of what the call acts on (the refused one for a denial); None: the tool."""
    if exc is not None and isinstance(refused := exc.details.get("target"), dict):
        return None if refused.get("kind") == "tool" else f"{refused['kind']}:{refused['id']}"
    hidden = {str(call.args.get(name)) for name in call.spec.secret_fields}
    named = [
        f"{t.kind}:{'[secret]' if t.id in hidden else t.id}"
        for t in call.targets or ()
        if t.kind != "tool"
    ]
    return ",".join(named) or None


def _audited_args(call: Invocation) -> dict[str, Any]:
    """The args the digest covers: a secret field's value is replaced by a marker."""
    hidden = call.spec.secret_fields
    if not hidden:
        return call.args
    return {k: "[secret]" if k in hidden else v for k, v in call.args.items()}


def _output(spec: ToolSpec, model: type[BaseModel], result: Any) -> dict[str, Any]:
    """`result` as JSON data, checked against `model` (`Internal` when it does not match)."""
    try:
        if not isinstance(result, model):
            result = model.model_validate(result)
        data: dict[str, Any] = result.model_dump(mode="json")
    except ValidationError as exc:
        raise Internal(
            f"{spec.name} returned output that does not match its output schema",
            details={"errors": [e["msg"] for e in exc.errors(include_url=False)]},
        ) from None
    return data


async def _checked_items(
    spec: ToolSpec, model: type[BaseModel], items: AsyncIterator[Any]
) -> AsyncIterator[dict[str, Any]]:
    try:
        async for item in items:
            yield _output(spec, model, item)
    finally:
        aclose = getattr(items, "aclose", None)
        if aclose is not None:
            await aclose()


def handler_terminal(
    resources: Resources, listing: Callable[[Principal | None], ToolListing]
) -> Next:
    """The innermost step: run the handler (or open the stream) and check what it returns."""

    async def run(call: Invocation) -> Any:
        spec = call.spec
        assert call.principal is not None
        principal = call.principal
        ctx = ToolContext(
            principal,
            call.trace_id,
            resources,
            lambda: listing(principal),
            call.progress_sink,
            call.tier,
        )
        if call.streaming:
            if spec.stream is None:
                raise InvalidInput(f"{spec.name} is not a stream; call it instead")
            items = spec.stream.handler(call.input, ctx)
            return _checked_items(spec, spec.stream.item_model, items)
        return _output(spec, spec.output_model, await spec.handler(call.input, ctx))

    return run
