"""`workflow.submit|get|list|cancel|rollback|retry`: durable DAGs on the orchestrator."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

from pydantic import Field

from daemons.orchestrator.model import WorkflowSpec, WorkflowState
from daemons.orchestrator.protocol import OrchestratorAPI
from daemons.orchestrator.views import WorkflowPage, WorkflowView
from registry import (
    Call,
    ContractCase,
    RateClass,
    RestAlias,
    Risk,
    StrictModel,
    Target,
    ToolContext,
    ToolSpec,
)
from registry.pipeline import MAX_INPUT_DEPTH
from registry.resources import Resources
from tools.ops.gating import request_command, spec_targets
from tools.plans import Plan, WorkflowOrPlan, control_plan, plan_spec
from tools.workflow.access import (
    Visibility,
    control_targets,
    read_targets,
)
from tools.workflow.submission import (
    FOLLOW_WAIT,
    FOLLOW_WORKFLOW,
    SUCCEEDED,
    WAIT_TIMEOUT_S,
    WORKFLOW_VOLATILE,
    SubmitOptions,
    finish,
    op_params,
    orchestrator,
    submit,
)

WORKFLOW_ID = Field(
    description="Workflow id (`wf-...`, or the id chosen at submit)", min_length=1, max_length=64
)
WAIT_TIMEOUT = Field(default=WAIT_TIMEOUT_S, gt=0, le=86_400, description="Longest wait, seconds")


class SubmitInput(WorkflowSpec, SubmitOptions):
    """A workflow spec, plus how to submit it."""


async def _submitted(args: SubmitInput, resources: Resources) -> list[Target]:
    """The workflow as a policy sees it: its labels and every action kind it would run
    (compensations included), so raw `shell`/`http` need their own permission, and the
    servers its provisioning tasks act on, so those obey the server rules."""
    return await spec_targets(args, args.id, resources)


class IdInput(StrictModel):
    id: str = WORKFLOW_ID


class ControlInput(StrictModel):
    id: str = WORKFLOW_ID
    wait: bool = Field(default=True, description="Return once the workflow has settled")
    wait_timeout_s: float = WAIT_TIMEOUT


class PlanControlInput(ControlInput):
    plan: bool = False  # listed bare: the name says it (docs/plans.md), the budget is tight


class ListInput(StrictModel):
    state: WorkflowState | None = None
    labels: dict[str, str] = Field(
        default_factory=dict, description="Only workflows carrying all these labels"
    )
    name: str | None = Field(default=None, max_length=128)
    limit: int = Field(default=50, ge=1, le=500)
    cursor: str | None = Field(default=None, description="`next_cursor` of the previous page")


_SPEC_FIELDS = tuple(WorkflowSpec.model_fields)


async def submit_workflow(args: SubmitInput, ctx: ToolContext) -> WorkflowView | Plan:
    # The input is a validated WorkflowSpec already: take its fields as they are (dumping
    # and validating a 1 MiB spec again would stall the event loop for tens of ms).
    spec = WorkflowSpec.model_construct(
        _fields_set=args.model_fields_set.intersection(_SPEC_FIELDS),
        **{name: getattr(args, name) for name in _SPEC_FIELDS},
    )
    if args.plan:
        return await plan_spec("workflow.submit", spec, args.id, ctx)
    params = op_params(args, exclude=_SPEC_FIELDS)  # the spec itself is the op's plan
    return await submit(ctx, spec, args, op_type="workflow.submit", params=params)


async def get_workflow(args: IdInput, ctx: ToolContext) -> WorkflowView:
    return await (await orchestrator(ctx)).get(args.id)


class WaitInput(StrictModel):
    id: str = WORKFLOW_ID
    timeout_s: float = WAIT_TIMEOUT


async def wait_workflow(args: WaitInput, ctx: ToolContext) -> WorkflowView:
    api = await orchestrator(ctx)
    return await finish(api, await api.get(args.id), ctx, True, args.timeout_s)


async def list_workflows(args: ListInput, ctx: ToolContext) -> WorkflowPage:
    """A page of the workflows the caller may read (so it may hold fewer than `limit`)."""
    api = await orchestrator(ctx)
    page = await api.list(args.state, args.labels, args.name, args.limit, args.cursor)
    shown = await Visibility(ctx, _spec("workflow.list")).views(page.workflows)
    return WorkflowPage(workflows=shown, next_cursor=page.next_cursor)


def _spec(name: str) -> ToolSpec:
    return next(spec for spec in TOOLS if spec.name == name)


Command = Callable[[OrchestratorAPI, str], Awaitable[WorkflowView]]


def _control(
    op: str, command: Command, goal: frozenset[WorkflowState] = SUCCEEDED
) -> Callable[[ControlInput, ToolContext], Awaitable[WorkflowView]]:
    """The handler of `workflow.cancel`: send it, then wait for the workflow to settle if
    asked; the command succeeded when it reached `goal`."""

    async def handler(args: ControlInput, ctx: ToolContext) -> WorkflowView:
        api = await orchestrator(ctx)
        view = await command(api, args.id)
        return await finish(api, view, ctx, args.wait, args.wait_timeout_s, goal)

    return handler


def _gated(
    op: str, risk: Literal["write", "destructive"], goal: frozenset[WorkflowState] = SUCCEEDED
) -> Callable[[PlanControlInput, ToolContext], Awaitable[WorkflowView | Plan]]:
    """The handler of a command that runs a workflow's tasks again (rollback, retry): its
    plan is the workflow as it stands; without `plan` it goes through the ops gate like a
    submission (policy decides; approval where it says so) and the controller runs it
    while the workflow still stands as planned. Then wait as `_control` does."""

    async def handler(args: PlanControlInput, ctx: ToolContext) -> WorkflowView | Plan:
        api = await orchestrator(ctx)
        plan = await control_plan(op, api, args.id)
        if args.plan:
            return plan
        view = await request_command(ctx, plan, risk)
        return await finish(api, view, ctx, args.wait, args.wait_timeout_s, goal)

    return handler


_CANCELLED = frozenset({WorkflowState.CANCELLED})
_UNDONE = frozenset({WorkflowState.ROLLED_BACK, WorkflowState.CANCELLED})
"""A rollback of a workflow once cancelled ends `cancelled`: undone all the same."""


def _wf(wf_id: str, *tasks: dict[str, Any], wait: bool = True, **fields: Any) -> dict[str, Any]:
    return {"id": wf_id, "name": wf_id, "tasks": list(tasks), "wait": wait, **fields}


def _noop(task_id: str, *deps: str, **extra: Any) -> dict[str, Any]:
    return {"id": task_id, "action": "noop", "depends_on": list(deps), **extra}


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


_NAP = {"id": "s", "action": "sleep", "params": {"seconds": 30}}
_FLAKY_ONCE = {"command": "test -f once || { touch once; echo first try fails >&2; exit 1; }"}

TOOLS = [
    ToolSpec(
        name="workflow.submit",
        rate_class=RateClass.EXEC,
        summary="Submit a workflow: a DAG of tasks with retries and compensations",
        description=(
            "Tasks run in parallel as their dependencies succeed, by priority, with retries "
            "and timeouts; a task that fails for good rolls the workflow back (compensations "
            "in reverse dependency order) unless on_failure is 'stop'. Durable: a restart "
            "resumes it. With `wait`, returns when it finishes and reports progress."
        ),
        input_model=SubmitInput,
        output_model=WorkflowOrPlan,
        handler=submit_workflow,
        follow=FOLLOW_WORKFLOW,
        permission="workflow:write",
        risk=Risk.WRITE,
        idempotent=False,
        targets=_submitted,
        rest=RestAlias("POST", "/v1/workflows"),
        tags=("workflow",),
        volatile_paths=WORKFLOW_VOLATILE,
        cases=(
            ContractCase("diamond", _wf("c-sub", _noop("a"), _noop("b", "a"), _noop("c", "a"))),
            ContractCase("plan", _wf("c-subp", _noop("a"), plan=True)),
            ContractCase(
                "plan of a cycle",
                _wf("c-cycp", _noop("a", "b"), _noop("b", "a"), plan=True),
                expect="invalid_input",
            ),
            ContractCase(
                "cycle", _wf("c-cyc", _noop("a", "b"), _noop("b", "a")), expect="invalid_input"
            ),
            ContractCase(
                "unknown action",
                _wf("c-act", {"id": "a", "action": "teleport"}),
                expect="invalid_input",
            ),
            ContractCase(
                "wait as a number", {**_wf("c-w0", _noop("a")), "wait": 0}, expect="invalid_input"
            ),
            ContractCase(
                "nested too deep",
                _wf(
                    "c-deep",
                    {"id": "a", "action": "noop", "params": {"x": _nested(MAX_INPUT_DEPTH)}},
                ),
                expect="invalid_input",
            ),
            ContractCase(
                "a task fails",
                _wf("c-fail", {"id": "a", "action": "shell", "params": {"command": "exit 3"}}),
                expect="workflow_failed",
            ),
        ),
    ),
    ToolSpec(
        name="workflow.get",
        summary="Show a workflow's state and task counts",
        input_model=IdInput,
        output_model=WorkflowView,
        handler=get_workflow,
        permission="workflow:read",
        targets=read_targets,
        idempotent=True,
        rest=RestAlias("GET", "/v1/workflows/{id}"),
        compat=(RestAlias("GET", "/workflows/{id}"),),
        tags=("workflow",),
        volatile_paths=WORKFLOW_VOLATILE,
        cases=(
            ContractCase(
                "finished",
                {"id": "c-get"},
                setup=(Call("workflow.submit", _wf("c-get", _noop("a"))),),
            ),
            ContractCase("missing", {"id": "c-none"}, expect="not_found"),
        ),
    ),
    ToolSpec(
        name="workflow.wait",
        summary="Wait for a workflow to finish (or for the timeout), showing progress",
        description=(
            "Answers the workflow once it is succeeded, failed, cancelled or rolled back, or "
            "as it is when `timeout_s` passes (check `state`)."
        ),
        input_model=WaitInput,
        output_model=WorkflowView,
        handler=wait_workflow,
        follow=FOLLOW_WAIT,
        permission="workflow:read",
        targets=read_targets,
        idempotent=True,
        rest=RestAlias("GET", "/v1/workflows/{id}/wait"),
        compat=(RestAlias("GET", "/workflows/{id}/wait"),),
        tags=("workflow",),
        volatile_paths=WORKFLOW_VOLATILE,
        cases=(
            ContractCase(
                "until done",
                {"id": "c-wait"},
                setup=(Call("workflow.submit", _wf("c-wait", _noop("a"), wait=False)),),
            ),
            ContractCase("zero timeout", {"id": "c-wait", "timeout_s": 0}, expect="invalid_input"),
            ContractCase(
                "runs out",
                {"id": "c-wst", "timeout_s": 0.05},
                expect="still_running",
                setup=(Call("workflow.submit", _wf("c-wst", _NAP, wait=False)),),
            ),
        ),
    ),
    ToolSpec(
        name="workflow.list",
        summary="List workflows, newest first, by state, label or name",
        input_model=ListInput,
        output_model=WorkflowPage,
        handler=list_workflows,
        permission="workflow:read",
        idempotent=True,
        rest=RestAlias("GET", "/v1/workflows"),
        tags=("workflow",),
        volatile_paths=tuple(f"workflows.*.{v}" for v in WORKFLOW_VOLATILE),
        cases=(
            ContractCase(
                "by label",
                {"labels": {"case": "list"}},
                setup=(Call("workflow.submit", _wf("c-lst", _noop("a"), labels={"case": "list"})),),
            ),
            ContractCase("bad state", {"state": "sleeping"}, expect="invalid_input"),
        ),
    ),
    ToolSpec(
        name="workflow.cancel",
        summary="Cancel a workflow: stop its running tasks and run compensations",
        input_model=ControlInput,
        output_model=WorkflowView,
        handler=_control("workflow.cancel", lambda api, wf: api.cancel(wf), _CANCELLED),
        follow=FOLLOW_WORKFLOW,
        permission="workflow:write",
        targets=control_targets,
        risk=Risk.DESTRUCTIVE,
        rest=RestAlias("POST", "/v1/workflows/{id}/cancel"),
        tags=("workflow",),
        volatile_paths=WORKFLOW_VOLATILE,
        cases=(
            ContractCase(
                "running",
                {"id": "c-can"},
                setup=(
                    Call(
                        "workflow.submit",
                        _wf("c-can", _NAP, wait=False),
                    ),
                ),
            ),
            ContractCase(
                "already finished",
                {"id": "c-can2"},
                expect="conflict",
                setup=(Call("workflow.submit", _wf("c-can2", _noop("a"))),),
            ),
        ),
    ),
    ToolSpec(
        name="workflow.rollback",
        rate_class=RateClass.EXEC,
        summary="Undo a finished workflow by running its compensations",
        input_model=PlanControlInput,
        output_model=WorkflowOrPlan,
        handler=_gated("workflow.rollback", "destructive", _UNDONE),
        follow=FOLLOW_WORKFLOW,
        permission="workflow:write",
        targets=control_targets,
        risk=Risk.DESTRUCTIVE,
        rest=RestAlias("POST", "/v1/workflows/{id}/rollback"),
        tags=("workflow",),
        volatile_paths=WORKFLOW_VOLATILE,
        cases=(
            ContractCase(
                "succeeded",
                {"id": "c-rb"},
                setup=(
                    Call(
                        "workflow.submit",
                        _wf("c-rb", _noop("a", compensate={"action": "noop"}), _noop("b", "a")),
                    ),
                ),
            ),
            ContractCase("missing", {"id": "c-rb-none"}, expect="not_found"),
            ContractCase(
                "plan",
                {"id": "c-rbp", "plan": True},
                setup=(Call("workflow.submit", _wf("c-rbp", _noop("a"))),),
            ),
        ),
    ),
    ToolSpec(
        name="workflow.retry",
        rate_class=RateClass.EXEC,
        summary="Resume a failed or cancelled workflow from its unfinished tasks",
        input_model=PlanControlInput,
        output_model=WorkflowOrPlan,
        handler=_gated("workflow.retry", "write"),
        follow=FOLLOW_WORKFLOW,
        permission="workflow:write",
        targets=control_targets,
        risk=Risk.WRITE,
        rest=RestAlias("POST", "/v1/workflows/{id}/retry"),
        tags=("workflow",),
        volatile_paths=WORKFLOW_VOLATILE,
        cases=(
            ContractCase(
                "fails once, then passes",
                {"id": "c-rt"},
                setup=(
                    Call(
                        "workflow.submit",
                        _wf(
                            "c-rt",
                            _noop("a"),
                            {
                                "id": "b",
                                "action": "shell",
                                "params": _FLAKY_ONCE,
                                "depends_on": ["a"],
                            },
                            on_failure="stop",
                        ),
                    ),
                ),
            ),
            ContractCase(
                "plan",
                {"id": "c-rtp", "plan": True},
                setup=(Call("workflow.submit", _wf("c-rtp", _noop("a"))),),
            ),
            ContractCase(
                "nothing to retry",
                {"id": "c-rt2"},
                expect="conflict",
                setup=(Call("workflow.submit", _wf("c-rt2", _noop("a"))),),
            ),
        ),
    ),
]
