"""Durability: every state change is a journal record (`journal`, one fsynced,
checksummed line each), written in batches by one writer (`commit`, group commit) before
anything acts on it; a workflow's whole state is periodically one snapshot record
(`snapshot`) so its journal can be truncated; on start, `recovery` rebuilds every workflow
from its snapshot and journal. The records themselves are the engine's
(`engine.records`); `snapshot` and `recovery` build engine runtime objects, so the engine
imports them as modules (see `engine.dispatch`).
"""

from daemons.orchestrator.durability.commit import GroupCommitter
from daemons.orchestrator.durability.journal import JournalFile, decode, encode
from daemons.orchestrator.durability.recovery import load_workflow, load_workflows

__all__ = [
    "GroupCommitter",
    "JournalFile",
    "decode",
    "encode",
    "load_workflow",
    "load_workflows",
]
