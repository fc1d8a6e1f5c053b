"""The journal on disk: checksummed records, torn tails cut off, group commit, snapshots
that cover (and truncate) the journal."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from daemons.common.settings import Settings
from daemons.orchestrator.durability import snapshot
from daemons.orchestrator.durability.commit import GroupCommitter
from daemons.orchestrator.durability.disk import OS_DISK
from daemons.orchestrator.durability.journal import JournalFile, decode, encode
from daemons.orchestrator.durability.recovery import load_workflow
from daemons.orchestrator.durability.watermark import MARK_FILE, EventMark
from daemons.orchestrator.engine.graph import compile_graph
from daemons.orchestrator.engine.records import RecordKind
from daemons.orchestrator.engine.runtime import WorkflowRun
from daemons.orchestrator.model import TaskState, WorkflowState
from orchestrator.conftest import StartOrchestrator
from orchestrator.helpers import spec
from registry.errors import Unavailable

RECORDS = [{"s": i, "k": "start", "task": f"t{i}", "n": 1, "at": 1.5} for i in range(1, 4)]


def test_a_record_round_trips_and_any_damage_is_detected() -> None:
    line = encode({"s": 1, "k": "ok", "task": "é", "result": {"a": [1, None]}})
    assert line.endswith(b"\n")
    assert decode(line[:-1]) == {"s": 1, "k": "ok", "task": "é", "result": {"a": [1, None]}}
    flipped = line[:-3] + bytes([line[-3] ^ 1]) + line[-2:-1]
    assert decode(flipped) is None  # checksum
    assert decode(line[:-5]) is None  # cut short
    assert decode(b"zzzzzzzz {}") is None


@pytest.mark.parametrize(
    "tail",
    [
        b"1234",  # a few bytes of the next line
        encode({"s": 4, "k": "ok"})[:-9],  # most of a line, no newline
        b"00000000 {not json}\n",  # a whole line that is garbage
        encode({"s": 4, "k": "ok"}).replace(b'"ok"', b'"no"'),  # checksum mismatch
    ],
)
def test_a_torn_tail_is_ignored_and_cut_off(tmp_path: Path, tail: bytes) -> None:
    journal = JournalFile(tmp_path, "wf-1")
    good = b"".join(encode(r) for r in RECORDS)
    journal.path.write_bytes(good + tail)

    assert journal.read_records() == RECORDS
    assert journal.path.read_bytes() == good  # the next append starts on a clean line


async def test_group_commit_writes_a_burst_with_one_sync_and_acknowledges_after_it(
    tmp_path: Path,
) -> None:
    published: list[list[object]] = []
    committer = GroupCommitter(lambda events, _first: published.append(events), EventMark(tmp_path))
    committer.start()
    journal = JournalFile(tmp_path, "wf-1")
    try:
        for i in range(1, 101):
            committer.append(journal, {"s": i, "k": "x", "at": 0.0}, event=i)
        assert not journal.path.exists() and published == []  # nothing acknowledged yet
        await committer.durable()
        assert len(journal.read_records()) == 100
        assert committer.batches == 1 and published == [list(range(1, 101))]

        committer.append(journal, {"s": 101, "k": "x", "at": 0.0})
        await committer.durable()
        assert committer.batches == 2 and len(journal.read_records()) == 101
    finally:
        await committer.close()


async def test_event_ids_number_on_above_every_id_a_previous_committer_handed_out(
    tmp_path: Path,
) -> None:
    """The mark moves a block ahead only when a batch would pass it (not per batch)."""
    firsts: list[int] = []
    journal = JournalFile(tmp_path, "wf-1")
    for run in range(2):
        committer = GroupCommitter(
            lambda events, first: firsts.append(first), EventMark(tmp_path, block=10)
        )
        committer.start()
        try:
            for i in range(1, 8):
                committer.append(journal, {"s": i, "k": "x", "at": 0.0}, event=i)
                committer.append(journal, {"s": i, "k": "x", "at": 0.0}, event=i)
                await committer.durable()
        finally:
            await committer.close()
        if run == 0:
            assert firsts == [1, 3, 5, 7, 9, 11, 13]
            assert (tmp_path / MARK_FILE).read_text() == "24\n"  # 2 + 10, then 14 + 10
    assert firsts[7] == 25 and firsts[-1] == 37  # above the mark: no id handed out twice


async def test_many_concurrent_writers_share_batches(tmp_path: Path) -> None:
    committer = GroupCommitter(lambda _events, _first: None, EventMark(tmp_path))
    committer.start()
    journals = [JournalFile(tmp_path, f"wf-{i}") for i in range(20)]

    async def writer(journal: JournalFile) -> None:
        for i in range(1, 51):
            committer.append(journal, {"s": i, "k": "x", "at": 0.0})
            await committer.durable()

    try:
        await asyncio.gather(*(writer(j) for j in journals))
    finally:
        await committer.close()
    assert all(len(j.read_records()) == 50 for j in journals)
    assert committer.records == 1000 and committer.batches <= 60  # ~50 rounds, not 1000


def _chain_run(directory: Path) -> tuple[WorkflowRun, list[dict[str, object]]]:
    wf_spec = spec(
        {"id": "a", "action": "noop"},
        {"id": "b", "action": "noop", "depends_on": ["a"]},
        {"id": "c", "action": "noop", "depends_on": ["b"]},
    )
    run = WorkflowRun("wf-1", wf_spec, compile_graph(wf_spec), 1.0, JournalFile(directory, "wf-1"))
    records: list[dict[str, object]] = [
        {"s": 1, "k": "submit", "at": 1.0, "wf": "wf-1", "spec": wf_spec.model_dump(mode="json")}
    ]
    for i, (kind, task) in enumerate(
        [("start", "a"), ("ok", "a"), ("start", "b"), ("ok", "b"), ("start", "c")], start=2
    ):
        record = {"s": i, "k": kind, "task": task, "n": 1, "at": 1.0 + i}
        run.apply(record)
        records.append(record)
    return run, records


def test_a_snapshot_written_before_the_journal_was_truncated_is_not_applied_twice(
    tmp_path: Path,
) -> None:
    run, records = _chain_run(tmp_path)
    run.journal.append(OS_DISK, [encode(r) for r in records])
    # A crash between the snapshot's rename and the journal's truncation leaves both.
    run.journal.snapshot_path.write_bytes(encode(snapshot.take(run)))

    loaded = load_workflow(JournalFile(tmp_path, "wf-1"), "wf-1")

    assert loaded is not None and loaded.seq == 6
    assert {t.spec.id: t.state for t in loaded.tasks} == {
        "a": TaskState.SUCCEEDED,
        "b": TaskState.SUCCEEDED,
        "c": TaskState.RUNNING,
    }
    assert loaded.counts[TaskState.SUCCEEDED] == 2 and loaded.tasks[2].waiting == 0


def test_a_checkpoint_replaces_the_journal(tmp_path: Path) -> None:
    run, records = _chain_run(tmp_path)
    run.journal.append(OS_DISK, [encode(r) for r in records])
    run.journal.checkpoint(OS_DISK, snapshot.take(run))

    assert run.journal.path.read_bytes() == b""
    loaded = load_workflow(JournalFile(tmp_path, "wf-1"), "wf-1")
    assert loaded is not None and loaded.state is WorkflowState.RUNNING
    assert [t.state for t in loaded.tasks] == [
        TaskState.SUCCEEDED,
        TaskState.SUCCEEDED,
        TaskState.RUNNING,
    ]


async def test_long_workflows_are_checkpointed_while_they_run_and_finished_ones_compacted(
    start_orchestrator: StartOrchestrator, settings: Settings
) -> None:
    orch = await start_orchestrator(checkpoint_every=50)
    chain = [
        {"id": f"t{i}", "action": "noop", "depends_on": [f"t{i - 1}"] if i else []}
        for i in range(150)
    ]
    last = {"id": "last", "action": "sleep", "params": {"seconds": 60}, "depends_on": ["t149"]}
    submitted = await orch.submit(spec(*chain, last))
    async for event in orch.events(since=0, workflow_id=submitted.id):
        if event.task_id == "last" and event.state == "running":
            break
    journal = JournalFile(settings.journal_dir, submitted.id)
    assert journal.read_snapshot() is not None
    assert len(journal.read_records()) < 150  # of ~300 records, most are in the snapshot

    await orch.stop(grace_s=0)
    again = await start_orchestrator(checkpoint_every=50)
    view = await again.get(submitted.id)
    assert view.task_counts == {"succeeded": 150, "running": 1}

    await again.cancel(submitted.id)
    assert (await again.wait(submitted.id, 10)).state == "cancelled"
    await again.stop()
    assert journal.path.read_bytes() == b""  # finished: one snapshot holds it all
    assert journal.read_snapshot() is not None


async def test_a_journal_that_cannot_be_written_acknowledges_nothing_until_it_can(
    tmp_path: Path,
) -> None:
    committer = GroupCommitter(
        lambda _events, _first: None, EventMark(tmp_path), retry_s=(0.01, 0.05)
    )
    committer.start()
    broken = JournalFile(tmp_path, "wf-1")
    broken.path.mkdir()  # in the way of the file, as a bad mount would be
    other = JournalFile(tmp_path, "wf-2")
    try:
        committer.append(broken, {"s": 1, "k": "x", "at": 0.0})
        with pytest.raises(Unavailable, match="cannot write its journal"):
            await committer.durable()
        committer.append(other, {"s": 1, "k": "x", "at": 0.0})  # queued: progress is kept
        with pytest.raises(Unavailable, match="retries by itself"):
            await committer.durable()  # but nothing is acknowledged in an outage
        broken.path.rmdir()
        await asyncio.wait_for(committer.written(), 10)  # the retry writes both, in order
        assert committer.outage is None
        assert broken.read_records() == [{"s": 1, "k": "x", "at": 0.0}]
        assert other.read_records() == [{"s": 1, "k": "x", "at": 0.0}]
        await committer.durable()
    finally:
        await committer.close()


def test_record_kinds_keep_the_short_values_journals_on_disk_hold() -> None:
    # Changing one would leave existing journals unreplayable; add kinds, never rename them.
    assert {kind.value for kind in RecordKind} == {
        "submit",
        "start",
        "ok",
        "fail",
        "cancelled",
        "cancel",
        "wf",
        "rollback",
        "retry",
        "cstart",
        "cok",
        "cfail",
        "snapshot",
        "summary",
    }
    assert encode({"s": 1, "k": RecordKind.SUCCEEDED}) == encode({"s": 1, "k": "ok"})
