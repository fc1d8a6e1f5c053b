"""The generic workflow engine: a workflow's DAG (`graph`); the state changes it journals
(`records`) and its in-memory state, changed only by applying them (`runtime`); the
engine that runs them, in three layers: the attempt queue by priority, backoff timers and
one attempt's run (`dispatch`), a workflow's phases, rollback and resume (`transitions`),
commands, lifecycle and retention (`scheduler`, `Engine`); workflow ids (`ids`); one
attempt of an action (`attempt`); per-task logs (`logs`); state-change events (`events`);
and `Orchestrator`, the in-process facade behind the `OrchestratorAPI` seam (`service`).
It knows no provider and no taskserv: those are actions, looked up by name.
"""

from daemons.orchestrator.engine.events import EventBus, RawEvent
from daemons.orchestrator.engine.graph import Graph, check_actions, compile_graph
from daemons.orchestrator.engine.records import Change, Record, RecordKind
from daemons.orchestrator.engine.runtime import TaskRun, WorkflowRun
from daemons.orchestrator.engine.scheduler import CHECKPOINT_EVERY, DEFAULT_CONCURRENCY, Engine
from daemons.orchestrator.engine.service import Orchestrator

__all__ = [
    "CHECKPOINT_EVERY",
    "DEFAULT_CONCURRENCY",
    "Change",
    "Engine",
    "EventBus",
    "Graph",
    "Orchestrator",
    "RawEvent",
    "Record",
    "RecordKind",
    "TaskRun",
    "WorkflowRun",
    "check_actions",
    "compile_graph",
]
