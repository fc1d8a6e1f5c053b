"""Check a submitted workflow and compile its tasks into an index-based DAG.

Everything a caller can get wrong is refused here, before anything is journaled or run:
a workflow past the size limits (`model.MAX_*`, named in the error), duplicate task ids,
unknown dependencies, dependency cycles (named), unknown actions and action params that
their `params_model` rejects. `prepare` does all of it; it is pure, so the engine runs it
in a worker thread and a big workflow never stalls the event loop.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from daemons.orchestrator.actions.base import Action
from daemons.orchestrator.model import (
    MAX_DEPTH,
    MAX_TASK_PARAMS_BYTES,
    MAX_TASKS,
    MAX_WORKFLOW_PARAMS_BYTES,
    WorkflowSpec,
)
from registry.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class Graph:
    """Task `i` waits for `deps[i]`; `dependents[i]` wait for it. Indices follow the spec."""

    index: dict[str, int]
    deps: tuple[tuple[int, ...], ...]
    dependents: tuple[tuple[int, ...], ...]


@dataclass(frozen=True, slots=True)
class Prepared:
    """A checked spec: its graph and its journal form."""

    graph: Graph
    spec_json: dict[str, Any]


def prepare(spec: WorkflowSpec, actions: Mapping[str, Action]) -> Prepared:
    """Check `spec` against the limits and `actions` and compile it (pure; thread-safe)."""
    check_limits(spec)
    graph = compile_graph(spec)
    check_actions(spec, actions)
    # Task by task: one dump of the whole spec would hold the GIL, stalling the event loop.
    spec_json = spec.model_dump(mode="json", exclude_defaults=True, exclude={"tasks"})
    spec_json["tasks"] = [t.model_dump(mode="json", exclude_defaults=True) for t in spec.tasks]
    return Prepared(graph, spec_json)


def check_limits(spec: WorkflowSpec) -> None:
    """Tasks and params bytes within `model.MAX_*` (depth is checked with the cycles)."""
    if len(spec.tasks) > MAX_TASKS:
        _too_big("max_tasks", MAX_TASKS, f"{len(spec.tasks):,} tasks", "split the workflow")
    total = 0
    for task in spec.tasks:
        size = _json_size(task.params)
        if task.compensate is not None:
            size += _json_size(task.compensate.params)
        if size > MAX_TASK_PARAMS_BYTES:
            _too_big(
                "max_task_params_bytes",
                MAX_TASK_PARAMS_BYTES,
                f"task {task.id!r} has {size:,} bytes of params",
                "pass large data by reference (a file, a URL, a secret name)",
                task=task.id,
            )
        total += size
    if total > MAX_WORKFLOW_PARAMS_BYTES:
        _too_big(
            "max_workflow_params_bytes",
            MAX_WORKFLOW_PARAMS_BYTES,
            f"its tasks have {total:,} bytes of params",
            "pass large data by reference or split the workflow",
        )


def _json_size(params: dict[str, Any]) -> int:
    return len(json.dumps(params, separators=(",", ":"), ensure_ascii=False).encode())


def _too_big(limit: str, maximum: int, found: str, hint: str, **details: Any) -> None:
    raise InvalidInput(
        f"workflow too big: {found}; the limit ({limit}) is {maximum:,}; {hint}",
        details={"limit": limit, "max": maximum, **details},
    )


def compile_graph(spec: WorkflowSpec) -> Graph:
    """The DAG of `spec`, or `InvalidInput` naming the bad task, dependency or cycle."""
    index: dict[str, int] = {}
    for i, task in enumerate(spec.tasks):
        if task.id in index:
            raise InvalidInput(
                f"duplicate task id {task.id!r} (tasks[{index[task.id]}] and tasks[{i}]); "
                "give every task of a workflow its own id",
                details={"task": task.id},
            )
        index[task.id] = i
    deps: list[tuple[int, ...]] = []
    dependents: list[list[int]] = [[] for _ in spec.tasks]
    for i, task in enumerate(spec.tasks):
        mine: list[int] = []
        for dep in dict.fromkeys(task.depends_on):
            j = index.get(dep)
            if j is None:
                raise InvalidInput(
                    f"task {task.id!r} depends on unknown task {dep!r}; "
                    "depends_on must name tasks of the same workflow",
                    details={"task": task.id, "dependency": dep},
                )
            mine.append(j)
            dependents[j].append(i)
        deps.append(tuple(mine))
    _refuse_cycles(spec, deps, dependents)
    return Graph(index, tuple(deps), tuple(tuple(d) for d in dependents))


def _refuse_cycles(
    spec: WorkflowSpec, deps: list[tuple[int, ...]], dependents: list[list[int]]
) -> None:
    """Kahn's algorithm; what it cannot order contains a cycle, which we walk to name it.

    The same walk measures the depth (tasks on the longest path) against `MAX_DEPTH`."""
    waiting = [len(d) for d in deps]
    stack = [i for i, n in enumerate(waiting) if n == 0]
    depth = [1] * len(deps)
    ordered = 0
    while stack:
        i = stack.pop()
        ordered += 1
        below = depth[i] + 1
        for j in dependents[i]:
            if depth[j] < below:
                depth[j] = below
            waiting[j] -= 1
            if waiting[j] == 0:
                stack.append(j)
    if ordered == len(deps):
        deepest = max(depth, default=0)
        if deepest > MAX_DEPTH:
            _too_big(
                "max_depth",
                MAX_DEPTH,
                f"its longest dependency chain has {deepest:,} tasks",
                "let independent tasks run side by side or split the workflow",
            )
        return
    # Every unordered task waits for another unordered one: walking those edges must loop.
    node = next(i for i, n in enumerate(waiting) if n > 0)
    seen: dict[int, int] = {}
    path: list[int] = []
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        node = next(j for j in deps[node] if waiting[j] > 0)
    cycle = [spec.tasks[i].id for i in path[seen[node] :]]
    cycle.append(cycle[0])
    raise InvalidInput(
        f"cycle: {' → '.join(cycle)} (each task depends on the next); "
        "remove one of these dependencies",
        details={"cycle": cycle},
    )


def check_actions(spec: WorkflowSpec, actions: Mapping[str, Action]) -> None:
    """Every task and compensation names a known action with params it accepts."""
    for task in spec.tasks:
        _check(task.id, task.action, task.params, actions, "")
        if task.compensate is not None:
            _check(task.id, task.compensate.action, task.compensate.params, actions, "compensate ")


def _check(
    task_id: str, name: str, params: dict[str, Any], actions: Mapping[str, Action], role: str
) -> None:
    action = actions.get(name)
    if action is None:
        raise InvalidInput(
            f"task {task_id!r}: unknown {role}action {name!r}; "
            f"available actions: {', '.join(sorted(actions))}",
            details={"task": task_id, "action": name},
        )
    try:
        action.params_model.model_validate(params)
    except ValidationError as exc:
        errors = [
            {"loc": ".".join(str(p) for p in e["loc"]), "msg": e["msg"]} for e in exc.errors()
        ]
        first = errors[0]
        raise InvalidInput(
            f"task {task_id!r}: invalid {role}params for action {name!r}: "
            f"{first['loc'] or 'params'}: {first['msg']}",
            details={"task": task_id, "action": name, "errors": errors},
        ) from None
