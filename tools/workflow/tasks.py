"""`task.list|get|logs`: the tasks of workflows, and what they printed."""

from __future__ import annotations

from pydantic import Field

from daemons.orchestrator.model import TaskState
from daemons.orchestrator.views import LOG_PAGE_DEFAULT, LOG_PAGE_MAX, TaskLogs, TaskView
from registry import Call, ContractCase, RestAlias, Risk, StrictModel, ToolContext, ToolSpec
from tools.workflow.access import Visibility, read_targets
from tools.workflow.submission import orchestrator

TASK_VOLATILE = ("started_at", "finished_at", "next_attempt_at")


class ListInput(StrictModel):
    workflow_id: str | None = Field(
        default=None, max_length=64, description="One workflow's tasks; all recent ones if omitted"
    )
    state: TaskState | None = None
    limit: int = Field(default=200, ge=1, le=5000, description="At most this many tasks")


class TaskList(StrictModel):
    tasks: list[TaskView]
    truncated: bool = Field(description="More tasks matched than `limit`")


class TaskInput(StrictModel):
    workflow_id: str = Field(min_length=1, max_length=64)
    task_id: str = Field(min_length=1, max_length=128)


class LogsInput(TaskInput):
    tail: int | None = Field(default=None, ge=0, le=100_000, description="Only the last N lines")
    offset: int | None = Field(
        default=None, ge=0, description="First line of the page (`next_offset` of the last one)"
    )
    limit: int = Field(
        default=LOG_PAGE_DEFAULT, ge=1, le=LOG_PAGE_MAX, description="Lines per page at most"
    )


async def list_tasks(args: ListInput, ctx: ToolContext) -> TaskList:
    api = await orchestrator(ctx)
    if args.workflow_id is not None:
        workflow_ids = [args.workflow_id]  # authorized on that workflow already
    else:
        recent = (await api.list(limit=50)).workflows
        visible = await Visibility(ctx, _spec("task.list")).views(recent)
        workflow_ids = [wf.id for wf in visible]
    tasks: list[TaskView] = []
    for workflow_id in workflow_ids:
        tasks += await api.tasks(workflow_id, args.state)
        if len(tasks) > args.limit:
            break
    return TaskList(tasks=tasks[: args.limit], truncated=len(tasks) > args.limit)


async def get_task(args: TaskInput, ctx: ToolContext) -> TaskView:
    return await (await orchestrator(ctx)).task(args.workflow_id, args.task_id)


async def task_logs(args: LogsInput, ctx: ToolContext) -> TaskLogs:
    api = await orchestrator(ctx)
    return await api.logs(args.workflow_id, args.task_id, args.tail, args.offset, args.limit)


def _spec(name: str) -> ToolSpec:
    return next(spec for spec in TOOLS if spec.name == name)


def _submit(wf_id: str, command: str = "echo hello from $PRVNG_TASK_ID") -> Call:
    task = {"id": "say", "action": "shell", "params": {"command": command}}
    return Call("workflow.submit", {"id": wf_id, "name": wf_id, "tasks": [task], "wait": True})


TOOLS = [
    ToolSpec(
        name="task.list",
        summary="List the tasks of a workflow (or of recent workflows), by state",
        input_model=ListInput,
        output_model=TaskList,
        handler=list_tasks,
        permission="workflow:read",
        targets=read_targets,
        risk=Risk.READ,
        idempotent=True,
        rest=RestAlias("GET", "/v1/tasks"),
        compat=(RestAlias("GET", "/tasks"),),
        tags=("workflow",),
        volatile_paths=tuple(f"tasks.*.{v}" for v in TASK_VOLATILE),
        cases=(
            ContractCase("of a workflow", {"workflow_id": "c-tl"}, setup=(_submit("c-tl"),)),
            ContractCase("missing workflow", {"workflow_id": "c-tl-none"}, expect="not_found"),
        ),
    ),
    ToolSpec(
        name="task.get",
        summary="Show one task: state, attempts, error, result, compensation",
        input_model=TaskInput,
        output_model=TaskView,
        handler=get_task,
        permission="workflow:read",
        targets=read_targets,
        idempotent=True,
        rest=RestAlias("GET", "/v1/workflows/{workflow_id}/tasks/{task_id}"),
        compat=(RestAlias("GET", "/workflows/{workflow_id}/tasks/{task_id}"),),
        tags=("workflow",),
        volatile_paths=TASK_VOLATILE,
        cases=(
            ContractCase(
                "found", {"workflow_id": "c-tg", "task_id": "say"}, setup=(_submit("c-tg"),)
            ),
            ContractCase(
                "unknown task",
                {"workflow_id": "c-tg2", "task_id": "nope"},
                expect="not_found",
                setup=(_submit("c-tg2"),),
            ),
        ),
    ),
    ToolSpec(
        name="task.logs",
        summary="Show what a task printed (stdout, stderr) and what the engine noted, a page "
        "at a time",
        input_model=LogsInput,
        output_model=TaskLogs,
        handler=task_logs,
        permission="workflow:read",
        targets=read_targets,
        idempotent=True,
        rest=RestAlias("GET", "/v1/workflows/{workflow_id}/tasks/{task_id}/logs"),
        compat=(RestAlias("GET", "/workflows/{workflow_id}/tasks/{task_id}/logs"),),
        tags=("workflow",),
        cases=(
            ContractCase(
                "printed", {"workflow_id": "c-log", "task_id": "say"}, setup=(_submit("c-log"),)
            ),
            ContractCase(
                "negative tail",
                {"workflow_id": "c-log", "task_id": "say", "tail": -1},
                expect="invalid_input",
            ),
        ),
    ),
]
