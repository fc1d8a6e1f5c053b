"""State-change events, published once durable, kept in a ring for late subscribers.

The engine publishes compact tuples (cheap on the hot path); subscribers get `Event`
models with a sequence number, so an SSE client can resume with `Last-Event-ID`. The
numbers come from the journal's high-water mark (`durability.watermark`), so they keep
increasing across restarts; the ring itself is memory: after a restart it holds only
what happened since.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator
from itertools import islice

from daemons.orchestrator.views import Event, EventKind
from registry.timestamps import iso_utc

RawEvent = tuple[EventKind, str, str | None, str, int | None, float, str | None]
"""`(kind, workflow_id, task_id, state, attempt, at, message)`."""

RING_SIZE = 10_000


class EventBus:
    """Fan-out of events to any number of subscribers, none of which can block the engine."""

    def __init__(self, capacity: int = RING_SIZE) -> None:
        self._ring: deque[tuple[int, RawEvent]] = deque(maxlen=capacity)
        self._next = 1
        self._changed: asyncio.Future[None] | None = None
        self.closed = False

    @property
    def last_seq(self) -> int:
        """The sequence number of the newest event (0 before the first)."""
        return self._next - 1

    def publish(self, events: list[RawEvent], first: int) -> None:
        """Events numbered from `first` on (the ids the committer handed out)."""
        ring = self._ring
        seq = first
        for event in events:
            ring.append((seq, event))
            seq += 1
        self._next = seq
        self._wake()

    def close(self) -> None:
        """End every subscription (on shutdown, so streaming responses finish)."""
        self.closed = True
        self._wake()

    async def changed(self) -> None:
        """Return at the next publish (or close): cheaper than a subscription."""
        if not self.closed:
            if self._changed is None:
                self._changed = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._changed)

    def subscribe(
        self, since: int | None = None, workflow_id: str | None = None
    ) -> AsyncGenerator[Event, None]:
        """Events after `since` (default: from this call on), optionally of one workflow.

        A subscriber that falls more than the ring's size behind skips what was dropped.
        """
        return self._stream(self.last_seq if since is None else since, workflow_id)

    async def _stream(self, cursor: int, workflow_id: str | None) -> AsyncGenerator[Event, None]:
        while True:
            if self._ring:
                first = self._ring[0][0]
                batch = list(islice(self._ring, max(0, cursor + 1 - first), None))
                for seq, raw in batch:
                    cursor = seq
                    if workflow_id is None or raw[1] == workflow_id:
                        yield to_event(seq, raw)
            if self.closed:
                return
            if cursor >= self.last_seq:
                await self.changed()

    def _wake(self) -> None:
        if self._changed is not None:
            self._changed.set_result(None)
            self._changed = None


def to_event(seq: int, raw: RawEvent) -> Event:
    kind, workflow_id, task_id, state, attempt, at, message = raw
    return Event(
        seq=seq,
        kind=kind,
        workflow_id=workflow_id,
        task_id=task_id,
        state=state,
        attempt=attempt,
        at=iso_utc(at),
        message=message,
    )
