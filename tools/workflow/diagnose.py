"""`workflow.diagnose`: a failed workflow's failed tasks matched against known failures.

Each failed task's error and the tail of its log are matched, in `PATTERNS` order, against
a catalog of failures (port in use, command not found, permission denied, timeout, health
check, disk full, connection refused, out of memory); the first match gives the likely
cause and the next `prvng` command to run. It reads like `task.get`/`task.logs` (the same
orchestrator calls, authorized on the workflow by `read_targets`), so a raw-exec
workflow's diagnosis is its owner's and the admins' only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import Field

from daemons.orchestrator.model import TaskState
from daemons.orchestrator.views import TaskView
from registry import Call, ContractCase, RestAlias, Risk, StrictModel, ToolContext, ToolSpec
from tools.workflow.access import read_targets
from tools.workflow.submission import orchestrator

LOG_TAIL = 200
EVIDENCE_MAX = 240


@dataclass(frozen=True, slots=True)
class Pattern:
    """A known failure: what it looks like, what it means, what to run next.

    `cause`, `next_command` and `hint` are templates over `{wf}`, `{task}`, `{server}`
    and the named groups of `match`."""

    id: str
    match: re.Pattern[str]
    cause: str
    next_command: str
    hint: str


PATTERNS: tuple[Pattern, ...] = (
    Pattern(
        "health-check-failing",
        re.compile(r"not healthy after|health check|unhealthy", re.I),
        "the taskserv started but its health check never passed",
        "prvng server refresh --names {server}",
        "read why in `prvng task logs --workflow-id {wf} --task-id {task}`, fix the "
        "taskserv's settings, then `prvng workflow retry --id {wf}`",
    ),
    Pattern(
        "port-in-use",
        re.compile(
            r"address already in use|EADDRINUSE|port (?P<port>\d+) is (already )?(in use|taken)",
            re.I,
        ),
        "the port the task binds{on_port} is already in use on this machine",
        "prvng workflow retry --id {wf}",
        "stop what listens on it first (`ss -ltnp`), or give the taskserv another `port` "
        "(`prvng settings recommend` finds clashes)",
    ),
    Pattern(
        "command-not-found",
        re.compile(
            r"status 127(?:: \S*sh: (?:\d+: )?(?P<cmd>[\w./-]+):)?|(?P<cmd2>[\w./-]+): "
            r"(?:command )?not found|command not found|"
            r"ModuleNotFoundError: No module named '(?P<module>[\w.]+)'",
            re.I,
        ),
        "a command or module the task needs is missing{what}",
        "prvng task get --workflow-id {wf} --task-id {task}",
        "install it where tasks run (they get a scrubbed PATH and run unprivileged) or call "
        "it by its full path, then `prvng workflow retry --id {wf}`",
    ),
    Pattern(
        "disk-full",
        re.compile(r"No space left on device|ENOSPC|Disk quota exceeded", re.I),
        "the disk is full",
        "prvng platform health",
        "free space on the file system of PRVNG_HOME, then `prvng workflow retry --id {wf}`",
    ),
    Pattern(
        "permission-denied",
        re.compile(
            r"(?:cannot create |open |: )(?P<path>/[^\s:'\"]+)?:? ?Permission denied|"
            r"Permission denied|EACCES|Operation not permitted",
            re.I,
        ),
        "the task's user may not use{on_path} (tasks run as an unprivileged user)",
        "prvng task get --workflow-id {wf} --task-id {task}",
        "give that user access (or work inside the task's sandbox), then "
        "`prvng workflow retry --id {wf}`",
    ),
    Pattern(
        "timeout",
        re.compile(r"timed out after (?P<secs>[\d.]+)s|timed out|deadline exceeded", re.I),
        "the task ran longer than its timeout{for_secs}",
        "prvng workflow retry --id {wf}",
        "raise the task's `timeout_s`, or find what it waits for in "
        "`prvng task logs --workflow-id {wf} --task-id {task}`",
    ),
    Pattern(
        "connection-refused",
        re.compile(
            r"Connection refused|ECONNREFUSED|Name or service not known|"
            r"Temporary failure in name resolution|Could not resolve host|getaddrinfo failed",
            re.I,
        ),
        "nothing answered at the address the task connects to (down, or a wrong name)",
        "prvng platform health",
        "start the service it needs or fix the host name, then `prvng workflow retry --id {wf}`",
    ),
    Pattern(
        "out-of-memory",
        re.compile(r"out of memory|MemoryError|Cannot allocate memory|status 137|Killed", re.I),
        "the task ran out of memory (or was killed)",
        "prvng workflow retry --id {wf}",
        "give it less data at a time or more memory",
    ),
)
UNKNOWN = Pattern(
    "unknown",
    re.compile(r"$^"),
    "no known failure pattern matches; the log tail says more",
    "prvng task logs --workflow-id {wf} --task-id {task} --tail 50",
    "a retry helps only if the cause was passing: `prvng workflow retry --id {wf}`",
)


class DiagnoseInput(StrictModel):
    workflow_id: str = Field(min_length=1, max_length=64)
    task_id: str | None = Field(default=None, max_length=128, description="Only this task")


class Diagnosis(StrictModel):
    task_id: str
    pattern: str
    cause: str
    next_command: str
    hint: str
    evidence: str | None = Field(description="The line that matched")


class DiagnoseOutput(StrictModel):
    workflow_id: str
    state: str
    diagnoses: list[Diagnosis]


def _missing(groups: dict[str, str]) -> str | None:
    return groups.get("module") or groups.get("cmd") or groups.get("cmd2")


def _first(texts: list[str]) -> tuple[Pattern, re.Match[str] | None, str]:
    """The first pattern matching the first text that any pattern matches."""
    for text in texts:
        for pattern in PATTERNS:
            if match := pattern.match.search(text):
                return pattern, match, text
    return UNKNOWN, None, ""


def diagnose_text(task: TaskView, error: str, log: str) -> Diagnosis:
    """The known failure the task's error (else its log) shows, filled in."""
    pattern, match, text = _first([error, log])
    groups = {k: v for k, v in (match.groupdict() if match else {}).items() if v}
    settings = task.params.get("settings") if isinstance(task.params.get("settings"), dict) else {}
    port = groups.get("port") or (settings or {}).get("port")
    values = {
        "wf": task.workflow_id,
        "task": task.id,
        "server": str(task.params.get("server") or task.params.get("name") or "SERVER"),
        "on_port": f" ({port})" if port else "",
        "what": f": {missing}" if (missing := _missing(groups)) else "",
        "on_path": f" {groups['path']}" if "path" in groups else " a file it needs",
        "for_secs": f" ({groups['secs']}s)" if "secs" in groups else "",
    }
    evidence = None
    if match is not None:
        start = text.rfind("\n", 0, match.start()) + 1
        end = text.find("\n", match.end())
        evidence = text[start : end if end >= 0 else None][:EVIDENCE_MAX]
    return Diagnosis(
        task_id=task.id,
        pattern=pattern.id,
        cause=pattern.cause.format(**values),
        next_command=pattern.next_command.format(**values),
        hint=pattern.hint.format(**values),
        evidence=evidence,
    )


async def diagnose(args: DiagnoseInput, ctx: ToolContext) -> DiagnoseOutput:
    api = await orchestrator(ctx)
    view = await api.get(args.workflow_id)
    if args.task_id is not None:
        tasks = [await api.task(args.workflow_id, args.task_id)]
    else:
        tasks = await api.tasks(args.workflow_id, TaskState.FAILED)
    diagnoses = []
    for task in tasks:
        logs = await api.logs(args.workflow_id, task.id, LOG_TAIL, None, LOG_TAIL)
        printed = [line.text for line in logs.lines if not line.text.startswith("$ ")]
        diagnoses.append(diagnose_text(task, task.error or "", "\n".join(printed)))
    return DiagnoseOutput(workflow_id=view.id, state=view.state.value, diagnoses=diagnoses)


def _failing(wf_id: str, command: str) -> Call:
    task = {
        "id": "t",
        "action": "shell",
        "params": {"command": command},
        "retry": {"max_attempts": 1},
    }
    return Call("workflow.submit", {"id": wf_id, "name": wf_id, "tasks": [task], "wait": True})


TOOLS = [
    ToolSpec(
        name="workflow.diagnose",
        summary="Explain why a workflow failed: likely cause and the next command, per failed task",
        input_model=DiagnoseInput,
        output_model=DiagnoseOutput,
        handler=diagnose,
        permission="workflow:read",
        targets=read_targets,
        risk=Risk.READ,
        idempotent=True,
        rest=RestAlias("GET", "/v1/workflows/{workflow_id}/diagnosis"),
        tags=("workflow", "settings"),
        cases=(
            ContractCase(
                "command not found",
                {"workflow_id": "c-dg"},
                setup=(_failing("c-dg", "no-such-command-prvng"),),
            ),
            ContractCase("missing workflow", {"workflow_id": "c-dg-none"}, expect="not_found"),
        ),
    ),
]
