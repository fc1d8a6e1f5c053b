"""The audit mirror: a durable pull consumer on `ops.audit.>` writing the audit repository.

Per batch, each message in order: parse (not an event → `Term`, logged: it can never be
stored), commit unless its key is already in the repository (a redelivery), then `Ack`,
only once the commit is durable. A failed commit is `Nak`ed and retried. Publishing to
remotes runs beside, never in the way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import FetchTimeoutError

from daemons.audit_mirror.event import parse_event
from daemons.audit_mirror.publish import Publisher
from daemons.audit_mirror.repo import AuditRepo
from daemons.audit_mirror.signing import ensure_signing_key
from daemons.bus import AUDIT_PREFIX, AUDIT_STREAM, MSG_ID
from registry.errors import InvalidInput, PlatformError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MirrorConfig:
    repo_dir: Path
    keys_dir: Path
    remotes: tuple[str, ...] = ()
    durable: str = "audit-mirror"
    batch: int = 128
    fetch_timeout_s: float = 1.0
    ack_wait_s: float = 30.0
    retry_delay_s: float = 1.0
    publish_backoff_s: tuple[float, float] = (0.5, 30.0)


@dataclass(slots=True)
class MirrorCounts:
    committed: int = 0
    duplicates: int = 0
    refused: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


class AuditMirror:
    def __init__(self, *, nc: Client, config: MirrorConfig) -> None:
        self.config = config
        self.counts = MirrorCounts()
        self.repo = AuditRepo(config.repo_dir, ensure_signing_key(config.keys_dir))
        self.publisher = Publisher(
            config.repo_dir, config.remotes, backoff_s=config.publish_backoff_s
        )
        self._js = nc.jetstream()
        self._loop: asyncio.Task[None] | None = None

    def consumer_config(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.config.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            filter_subject=AUDIT_PREFIX + ">",
            ack_wait=self.config.ack_wait_s,
            max_ack_pending=-1,
        )

    async def start(self) -> None:
        """Open the repository (index rebuilt), create or join the consumer, pull."""
        await asyncio.to_thread(self.repo.open)
        await self._js.add_consumer(AUDIT_STREAM, self.consumer_config())
        sub = await self._js.pull_subscribe_bind(self.config.durable, stream=AUDIT_STREAM)
        self.publisher.start()
        self._loop = asyncio.create_task(self._pull(sub), name="audit-mirror-pull")

    async def stop(self) -> None:
        """Stop pulling (unacked messages are redelivered) and publishing."""
        task, self._loop = self._loop, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.publisher.stop()
        self.repo.close()

    async def _pull(self, sub: JetStreamContext.PullSubscription) -> None:
        while True:
            try:
                messages = await sub.fetch(self.config.batch, timeout=self.config.fetch_timeout_s)
            except (FetchTimeoutError, TimeoutError):
                continue
            except nats.errors.Error as exc:  # disconnected: the client reconnects itself
                log.warning("audit mirror: fetch failed: %s", exc)
                await asyncio.sleep(0.2)
                continue
            fetched = time.monotonic()
            for index, msg in enumerate(messages):  # in order: the history follows the stream
                if time.monotonic() - fetched > self.config.ack_wait_s / 2:
                    for waiting in messages[index:]:  # still ours: not redelivered meanwhile
                        await self._answer(waiting.in_progress())
                    fetched = time.monotonic()
                await self.handle(msg)

    async def handle(self, msg: Msg) -> None:
        """Store one message's event (once) and answer it."""
        try:
            committed = await self.record(msg)
        except InvalidInput as exc:
            self.counts.refused += 1
            log.error("audit mirror: message %s refused: %s", msg.metadata.sequence.stream, exc)
            await self._answer(msg.term())
            return
        except PlatformError as exc:  # git failed: the message comes back
            self.counts.failed += 1
            self.counts.errors = [*self.counts.errors[-9:], exc.message]
            await self._answer(msg.nak(delay=self.config.retry_delay_s))
            return
        await self._answer(msg.ack())
        if committed:
            self.publisher.changed()

    async def record(self, msg: Msg) -> bool:
        """Commit the message's event unless already stored; True if it made a commit."""
        published = msg.metadata.timestamp or datetime.now(UTC)
        record = parse_event(msg.data, (msg.headers or {}).get(MSG_ID), published)
        commit = await asyncio.to_thread(self.repo.commit, record)
        if commit is None:
            self.counts.duplicates += 1
            return False
        self.counts.committed += 1
        return True

    async def _answer(self, answer: Awaitable[None]) -> None:
        try:
            await answer
        except nats.errors.Error as exc:  # a lost ack: the redelivery finds it stored
            log.warning("audit mirror: could not answer: %s", exc)
