"""Retention: which finished workflows are old enough, or far enough back, to delete.

The engine tells `History` when a workflow's finish becomes durable (and when a retry or
rollback reopens it); `due` answers the oldest ones past `max_count` or `max_age_s`
(PRVNG_WORKFLOW_RETENTION_COUNT / PRVNG_WORKFLOW_RETENTION_S) in time proportional to
what it answers, so checking after every finish stays cheap. Unfinished workflows are
never in it, so they are never deleted.
"""

from __future__ import annotations

SWEEP_S = 60.0
"""How often the engine checks the age limit (the count is checked at every finish)."""


class History:
    """Finished workflows in the order they finished."""

    __slots__ = ("_finished", "max_age_s", "max_count")

    def __init__(self, max_age_s: float, max_count: int) -> None:
        if max_count < 0 or max_age_s < 0:
            raise ValueError("workflow retention count and age must be 0 or more")
        self.max_age_s = max_age_s
        self.max_count = max_count
        self._finished: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._finished)

    def finished(self, workflow_id: str, at: float) -> None:
        self._finished.pop(workflow_id, None)
        self._finished[workflow_id] = at

    def forget(self, workflow_id: str) -> None:
        """Deleted, or running again (it comes back when it finishes again)."""
        self._finished.pop(workflow_id, None)

    def due(self, now: float) -> list[str]:
        """The oldest finished workflows beyond the count or older than the age."""
        over = len(self._finished) - self.max_count
        cutoff = now - self.max_age_s
        due = []
        for workflow_id, at in self._finished.items():
            if over <= 0 and at >= cutoff:
                break
            due.append(workflow_id)
            over -= 1
        return due
