"""The orchestrator: a durable workflow engine (DAGs, priorities, retries, rollback).

Public surface — what `tools/` and `servers/` may import:

- `model` — what callers submit: `WorkflowSpec`, `TaskSpec`, policies, states;
- `views` — what callers read back: `WorkflowView`, `TaskView`, `TaskLogs`, `Event`;
- `protocol` — `OrchestratorAPI`, the seam tools program against;
- `serving` — `OrchestratorClient` (the API over HTTP) and `run_daemon` (`prvng daemon
  orchestrator`); `engine.Orchestrator` is the same API in process, for the assembly;
- `provisioning.templates` and `provisioning.taskservs` — the provisioning workflows and
  the taskserv catalog the server and taskserv tools build on.

Everything else is internal: `engine/` (scheduling, attempts, events), `durability/`
(journal, group commit, snapshots, recovery), `actions/` (what a task runs) and the rest of
`provisioning/` (providers, the server and taskserv actions). See docs/orchestrator.md.
"""
