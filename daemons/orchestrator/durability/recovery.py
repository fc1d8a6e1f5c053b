"""Rebuild every unfinished workflow from disk: its snapshot (if any), then its journal
replayed. A finished one is only its snapshot's summary line (`Archived`), so start-up
time follows the unfinished workflows, not the history.

Nothing here is fatal to the engine: a torn journal tail is cut off (see `journal`), a
journal whose "submit" record never became durable is removed (that submit was never
acknowledged), and a workflow whose files cannot be replayed is logged and left on disk
for inspection, without stopping the others.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from pydantic import ValidationError

from daemons.orchestrator.durability import snapshot
from daemons.orchestrator.durability.journal import JournalFile, workflow_ids
from daemons.orchestrator.engine.graph import compile_graph
from daemons.orchestrator.engine.records import Change, RecordKind, SnapshotRecord, SubmitRecord
from daemons.orchestrator.engine.runtime import Archived, WorkflowRun
from daemons.orchestrator.model import WorkflowSpec
from daemons.orchestrator.views import WorkflowView

log = logging.getLogger("prvng.orchestrator.recovery")


@dataclass(frozen=True, slots=True)
class Recovered:
    runs: list[WorkflowRun]
    """Replayed: every unfinished workflow (and any finished one without a summary)."""
    archived: dict[str, Archived]
    """Finished workflows, by id, oldest finish first."""


def load_workflows(directory: Path) -> Recovered:
    """Every workflow journaled in `directory`, in its last durable state."""
    runs = []
    archived: list[tuple[str, Archived]] = []
    for workflow_id in workflow_ids(directory):
        journal = JournalFile(directory, workflow_id)
        summary = _summary(journal)
        if summary is not None:
            archived.append((workflow_id, summary))
            continue
        try:
            run = load_workflow(journal, workflow_id)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            log.error(
                "cannot replay workflow %s (%s: %s); its files stay in %s for inspection",
                workflow_id,
                type(exc).__name__,
                exc,
                directory,
            )
            continue
        if run is not None:
            runs.append(run)
    archived.sort(key=lambda item: item[1].finished_at)
    return Recovered(runs, dict(archived))


def _summary(journal: JournalFile) -> Archived | None:
    record = journal.read_summary()
    if record is None:
        return None
    try:
        return Archived(WorkflowView.model_validate(record["view"]), record["finished_at"])
    except (KeyError, ValidationError):
        return None  # loaded in full instead


def load_workflow(journal: JournalFile, workflow_id: str) -> WorkflowRun | None:
    """One workflow from its files; None when it was never durably submitted."""
    snap = journal.read_snapshot()
    records = journal.read_records()
    origin: SnapshotRecord | SubmitRecord
    if snap is not None:
        origin = snap
        created_at = snap["created_at"]
    elif records and records[0].get("k") == RecordKind.SUBMIT:
        origin = cast(SubmitRecord, records[0])
        created_at = origin["at"]
    else:
        log.warning("workflow %s: no durable submit record; removing its journal", workflow_id)
        journal.path.unlink(missing_ok=True)
        return None
    spec = _spec(origin)
    run = WorkflowRun(workflow_id, spec, compile_graph(spec), created_at, journal)
    if snap is not None:
        snapshot.restore(run, snap)
    else:
        run.seq = origin["s"]
    # Past the submit (first) and what the snapshot covers, a journal holds only changes.
    submit = RecordKind.SUBMIT
    for record in cast("list[Change]", records):
        if record["s"] > run.seq and record["k"] != submit:
            run.apply(record)
    run.durable_state = run.state
    run.since_checkpoint = len(records)
    return run


def _spec(origin: SnapshotRecord | SubmitRecord) -> WorkflowSpec:
    try:
        return WorkflowSpec.model_validate(origin["spec"])
    except ValidationError as exc:
        raise ValueError(f"the journaled spec no longer validates: {exc}") from None
