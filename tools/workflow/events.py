"""`workflow.events`: workflow and task state changes, as a page or as a stream.

Streamed (SSE on HTTP, lines on the CLI), it yields each event as it becomes durable,
resumable after any event number; called (MCP, `POST /v1/tools/workflow.events`), it
answers the events that have arrived, reporting each as progress. Both pass the whole
pipeline, so opening a stream is authorized, rate-limited and audited like any call.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator

from pydantic import Field

from daemons.orchestrator.model import TERMINAL_WORKFLOW_STATES, WORKFLOW_ID_PATTERN, TaskState
from daemons.orchestrator.views import Event
from registry import ContractCase, RestAlias, Risk, StrictModel, ToolContext, ToolSpec
from registry.model import Stream
from tools.workflow.access import Visibility, subscribe_targets
from tools.workflow.submission import orchestrator

_FINAL_TASK_STATES = frozenset(
    {TaskState.SUCCEEDED, TaskState.FAILED, TaskState.SKIPPED, TaskState.CANCELLED}
)
_FINAL_COMPENSATION_STATES = frozenset({TaskState.COMPENSATED, TaskState.FAILED})
_READY_S = 0.01
"""How long a page waits for more once it has events: what has arrived comes at once."""


class EventsInput(StrictModel):
    workflow_id: str | None = Field(
        default=None, pattern=WORKFLOW_ID_PATTERN, description="Only this workflow's events"
    )
    since: int | None = Field(
        default=None,
        ge=0,
        description="Resume after this event number (SSE Last-Event-ID); default: from now on",
    )
    until_finished: bool = Field(
        default=False, description="End once the workflow named by workflow_id has finished"
    )
    limit: int = Field(default=100, ge=1, le=1000, description="Most events in one page")
    wait_s: float = Field(
        default=0, ge=0, le=300, description="How long a page waits for its first event"
    )


class WorkflowEvent(Event):
    final: bool = Field(description="The state is final for its workflow, task or compensation")


class EventPage(StrictModel):
    events: list[WorkflowEvent]
    last_seq: int | None = Field(description="Pass as `since` to read on from here")


def _is_final(event: Event) -> bool:
    if event.kind == "workflow":
        return event.state in TERMINAL_WORKFLOW_STATES
    if event.kind == "task":
        return event.state in _FINAL_TASK_STATES
    return event.state in _FINAL_COMPENSATION_STATES


async def stream_events(args: EventsInput, ctx: ToolContext) -> AsyncGenerator[WorkflowEvent, None]:
    # No `not_found` for an unknown workflow id: a caller may subscribe before it submits,
    # so each event is shown only if the caller may read its workflow.
    events = (await orchestrator(ctx)).events(args.since, args.workflow_id)
    visibility = Visibility(ctx, TOOLS[0])
    try:
        async for event in events:
            if not await visibility.may_read(event.workflow_id):
                continue
            item = WorkflowEvent(**event.model_dump(), final=_is_final(event))
            yield item
            if args.until_finished and item.kind == "workflow" and item.final:
                return
    finally:
        close = getattr(events, "aclose", None)
        if close is not None:
            await close()


async def events_page(args: EventsInput, ctx: ToolContext) -> EventPage:
    """Up to `limit` events: what has arrived, after waiting up to `wait_s` for the first."""
    items: list[WorkflowEvent] = []
    stream = stream_events(args, ctx)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + args.wait_s
    try:
        while len(items) < args.limit:
            step = asyncio.ensure_future(anext(stream))
            timeout = max(deadline - loop.time(), _READY_S) if not items else _READY_S
            done, _ = await asyncio.wait({step}, timeout=timeout)
            if not done:
                step.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await step
                break
            try:
                item = step.result()
            except StopAsyncIteration:
                break
            items.append(item)
            await ctx.progress(len(items), None, f"{item.task_id or 'workflow'}: {item.state}")
    finally:
        await stream.aclose()
    return EventPage(events=items, last_seq=items[-1].seq if items else args.since)


TOOLS = [
    ToolSpec(
        name="workflow.events",
        summary="Read workflow and task state changes, or follow them as a stream",
        description=(
            "Events after `since` (default: from now on), optionally of one workflow. As a "
            "stream (`GET /v1/events`, SSE; `prvng workflow events --follow`) it runs until "
            "the caller leaves (or, with until_finished, the workflow ends); called, it "
            "answers one page."
        ),
        input_model=EventsInput,
        output_model=EventPage,
        handler=events_page,
        stream=Stream(WorkflowEvent, stream_events),
        permission="workflow:read",
        targets=subscribe_targets,
        risk=Risk.READ,
        idempotent=True,
        rest=RestAlias("GET", "/v1/events"),
        tags=("workflow",),
        volatile_paths=("events", "last_seq"),
        cases=(
            ContractCase("nothing new", {"wait_s": 0}),
            ContractCase("not yet submitted", {"workflow_id": "ghost"}),
            ContractCase("bad cursor", {"since": -1}, expect="invalid_input"),
        ),
    ),
]
