"""The controller: a durable pull consumer on `ops.pending.>` that runs each op once.

Per message: verify the token strictly (refused → `Term` + audit); claim the jti in the
ledger (a create that one controller wins; the same jti from another message → `Term`,
a replay); terminal already → `Ack` without dispatch; submit to the dispatcher with the
jti as workflow id (after a crash: only if the executor never saw it) → `Ack`; executor
unreachable → `Nak` with a growing delay, dead-lettered (recorded, audited, `Term`) at
`max_deliver`.
Each dispatched op is then followed to its end (`succeeded | failed`, audited).
On start, ops a crash left `dispatched` are reconciled with the executor.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import FetchTimeoutError
from pydantic import ValidationError

from daemons.bus import PENDING_PREFIX, PENDING_STREAM
from daemons.common.state import StateStore
from daemons.controller.acks import Ack, AckCounts, AckResult, Nak, Term, answer
from daemons.controller.dispatch import Dispatcher, RunState
from daemons.controller.ledger import TERMINAL, Ledger, OpState
from daemons.controller.verify import TokenRefused, TokenVerifier
from daemons.ops.audit import AuditPublisher, Outcome
from daemons.ops.bodies import Bodies, BodyMissing
from daemons.ops.model import OpMessage, OpPlan, OpRef, OpRequest, OpsClaims
from daemons.ops.steps import loads_in_steps
from registry.errors import PlatformError, Unavailable

log = logging.getLogger(__name__)
_RETRY_DELAYS_S = [0.1, 0.2, 0.5, 1.0, 2.0, *[5.0] * 120]
"""About ten minutes of retries when recording a finished op."""


@dataclass(frozen=True, slots=True)
class _Ref:
    """What following an op and auditing it needs (the ledger keeps no token)."""

    jti: str
    op_type: str
    trace_id: str


@dataclass(frozen=True, slots=True)
class ControllerConfig:
    durable: str = "ops-controller"
    ack_wait_s: float = 30.0
    max_deliver: int = 6
    """Deliveries with the executor unreachable before an op is dead-lettered."""
    nak_delays_s: list[float] = field(default_factory=lambda: [1.0, 2.0, 5.0, 10.0, 30.0])
    """Our delays after a Nak (executor unreachable), by delivery count."""
    max_redelivery_s: float = 600.0

    def redelivery_backoff(self) -> list[float]:
        """JetStream's delays after a missed ack: ack_wait, doubling, capped (the last one
        repeats; it replaces ack_wait, so it starts there)."""
        return [
            min(self.ack_wait_s * 2**i, self.max_redelivery_s) for i in range(self.max_deliver - 1)
        ]

    batch: int = 64
    in_flight: int = 256
    """Messages handled at once (each holds its ack until done)."""
    fetch_timeout_s: float = 1.0


_BIG_MESSAGE = 64 * 1024


class Controller:
    def __init__(
        self,
        *,
        nc: Client,
        state: StateStore,
        verifier: TokenVerifier,
        dispatcher: Dispatcher,
        config: ControllerConfig | None = None,
        name: str | None = None,
    ) -> None:
        self.name = name or f"controller-{uuid.uuid4().hex[:8]}"
        self.config = config or ControllerConfig()
        self.counts = AckCounts()
        self._nc = nc
        self._js = nc.jetstream()
        self._ledger = Ledger(state)
        self._verifier = verifier
        self._dispatcher = dispatcher
        self._audit = AuditPublisher(self._js, "controller")
        self._bodies = Bodies(self._js)
        self._loop: asyncio.Task[None] | None = None
        self._stopping = False
        self._trackers: dict[str, asyncio.Task[None]] = {}
        self._handling: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(self.config.in_flight)

    def consumer_config(self) -> ConsumerConfig:
        c = self.config
        return ConsumerConfig(
            durable_name=c.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            filter_subject=PENDING_PREFIX + ">",
            ack_wait=c.ack_wait_s,
            # JetStream never gives a message up by itself: an outage of NATS or of the
            # state store must not drop an op unrecorded. We dead-letter, on purpose, an op
            # whose executor stayed unreachable for `max_deliver` deliveries.
            max_deliver=-1,
            backoff=c.redelivery_backoff() or None,
        )

    async def start(self) -> None:
        """Create (or join) the durable consumer, reconcile, then pull."""
        await self._js.add_consumer(PENDING_STREAM, self.consumer_config())
        await self.reconcile()
        sub = await self._js.pull_subscribe_bind(self.config.durable, stream=PENDING_STREAM)
        self._stopping = False
        self._loop = asyncio.create_task(self._pull(sub), name=f"{self.name}-pull")

    @property
    def running(self) -> bool:
        """Pulling (started, not stopped, its loop alive)."""
        return self._loop is not None and not self._loop.done()

    async def stop(self) -> None:
        """Stop pulling and following; what is unacked is redelivered to whoever pulls."""
        self._stopping = True
        tasks = [
            t for t in (self._loop, *self._handling, *self._trackers.values()) if t is not None
        ]
        await _cancelled(tasks)
        self._loop = None
        self._trackers.clear()

    async def _pull(self, sub: nats.js.JetStreamContext.PullSubscription) -> None:
        while not self._stopping:
            try:
                messages = await sub.fetch(self.config.batch, timeout=self.config.fetch_timeout_s)
            except (FetchTimeoutError, TimeoutError):
                continue
            except nats.errors.Error as exc:  # disconnected: the client reconnects itself
                log.warning("%s: fetch failed: %s", self.name, exc)
                await asyncio.sleep(0.2)
                continue
            for msg in messages:  # handled concurrently; the next fetch does not wait
                await self._slots.acquire()
                task = asyncio.create_task(self._one(msg))
                self._handling.add(task)
                task.add_done_callback(self._handled)

    def _handled(self, task: asyncio.Task[None]) -> None:
        self._handling.discard(task)
        self._slots.release()

    async def _one(self, msg: Msg) -> None:
        try:
            result = await self.handle(msg)
        except PlatformError as exc:  # the state store or NATS failed under us
            result = Nak(f"{exc.code.value}: {exc.message}", self._delay(msg))
        try:
            await answer(msg, result, self.counts)
        except nats.errors.Error as exc:  # the ack is lost: redelivery finds the op handled
            log.warning("%s: could not answer %s: %s", self.name, result, exc)

    def _verified(self, data: bytes) -> tuple[OpMessage, OpsClaims]:
        message = OpMessage.model_validate_json(data)
        return message, self._verifier.verify(message)

    async def _fetched(self, ref: OpRef | None) -> OpRequest:
        """A big op's params and plan, fetched by the signed digests (hashed on arrival)
        and parsed in bounded steps."""
        assert ref is not None  # `verify` refuses a message with neither
        try:
            params = await loads_in_steps(await self._bodies.get(ref.params_digest))
            plan = await loads_in_steps(await self._bodies.get(ref.plan_digest))
        except BodyMissing as exc:
            raise TokenRefused(f"the op's body is missing or changed: {exc}") from None
        except ValueError:
            raise TokenRefused("the op's body is not JSON") from None
        head = ref.model_dump(exclude={"params_digest", "plan_digest"})
        return OpRequest(**head, params=params, plan=OpPlan.model_validate(plan))

    async def handle(self, msg: Msg) -> AckResult:
        meta = msg.metadata
        seq = meta.sequence.stream
        try:
            if len(msg.data) > _BIG_MESSAGE:  # a big workflow: parse and hash off the loop
                message, claims = await asyncio.to_thread(self._verified, msg.data)
            else:
                message, claims = self._verified(msg.data)
            op = message.op or await self._fetched(message.ref)
        except (ValidationError, TokenRefused) as exc:
            reason = exc.reason if isinstance(exc, TokenRefused) else "not an op message"
            await self._audit.emit(
                Outcome.INVALID_TOKEN,
                actor=self.name,
                reason=reason,
                details={"stream_seq": seq, "subject": msg.subject},
            )
            return Term(reason)
        fresh, record = await self._ledger.claim(claims, seq, self.name)
        if record["stream_seq"] != seq:
            await self._emit(Outcome.REPLAYED, claims, reason=f"first seen as message {seq}")
            return Term(f"{claims.jti} replayed (first seen as message {record['stream_seq']})")
        if OpState(record["state"]) in TERMINAL:
            return Ack(f"already {record['state']}")
        return await self._dispatch(msg, claims, op, fresh)

    async def _dispatch(self, msg: Msg, claims: OpsClaims, op: OpRequest, fresh: bool) -> AckResult:
        jti = claims.jti
        try:
            if not fresh and await self._dispatcher.outcome(jti) is not None:
                self._follow(claims)
                return Ack("dispatched before")
            await self._dispatcher.submit(jti, op)
        except Unavailable as exc:
            if msg.metadata.num_delivered >= self.config.max_deliver:
                await self._ledger.finish(jti, OpState.DEAD_LETTERED, exc.message)
                await self._emit(Outcome.DEAD_LETTERED, claims, reason=exc.message)
                return Term(f"dead-lettered after {msg.metadata.num_delivered} deliveries")
            await self._ledger.note(jti, exc.message)
            return Nak(exc.message, self._delay(msg))
        except PlatformError as exc:  # the executor refused the workflow: it never can run
            await self._ledger.finish(jti, OpState.FAILED, exc.message, exc.code.value)
            await self._emit(Outcome.FAILED, claims, reason=exc.message)
            return Term(exc.message)
        self._follow(claims)  # audited at its end: a dispatch is a step, not an outcome
        return Ack("dispatched")

    async def reconcile(self) -> list[str]:
        """Ops a dead controller left `dispatched`: follow those the executor knows to
        their end. (One it never saw was never acked: its message comes back and is
        submitted then.) Their ids."""
        ids = []
        for record in await self._ledger.in_state(OpState.DISPATCHED):
            jti = str(record["id"])
            try:
                known = await self._dispatcher.outcome(jti) is not None
            except PlatformError as exc:
                log.warning("%s: cannot reconcile %s yet: %s", self.name, jti, exc.message)
                continue
            if known:
                self._follow(_Ref(jti, str(record["op_type"]), str(record["trace_id"])))
                ids.append(jti)
        return ids

    def _follow(self, ref: _Ref | OpsClaims) -> None:
        jti = ref.jti
        if jti not in self._trackers:
            task = asyncio.create_task(self._track(ref), name=f"follow-{jti}")
            self._trackers[jti] = task
            task.add_done_callback(lambda _t: self._trackers.pop(jti, None))

    async def _track(self, ref: _Ref | OpsClaims) -> None:
        """Wait for the op's end, then audit and record it, retrying while NATS or the
        state store is away (the op was acked: nobody else will record it)."""
        jti = ref.jti
        for delay in _RETRY_DELAYS_S:
            try:
                result = await self._dispatcher.wait(jti)
                if result is RunState.RUNNING:
                    return
                state = OpState.SUCCEEDED if result is RunState.SUCCEEDED else OpState.FAILED
                outcome = Outcome.SUCCEEDED if state is OpState.SUCCEEDED else Outcome.FAILED
                await self._emit(outcome, ref)  # first: emitted again on a retry, stored once
                await self._ledger.finish(jti, state)
                return
            except PlatformError as exc:
                log.warning("%s: %s not recorded yet (%s); retrying", self.name, jti, exc.message)
                await asyncio.sleep(delay)  # a retry backoff, not a wait for a state
        log.error("%s: gave up recording %s; the next start reconciles it", self.name, jti)

    async def _emit(self, outcome: Outcome, ref: _Ref | OpsClaims, reason: str = "") -> None:
        await self._audit.emit(
            outcome,
            op_id=ref.jti,
            op_type=ref.op_type,
            actor=self.name,
            trace_id=ref.trace_id,
            reason=reason,
        )

    def _delay(self, msg: Msg) -> float:
        delays = self.config.nak_delays_s or [1.0]
        return delays[min(msg.metadata.num_delivered, len(delays)) - 1]

    def following(self) -> int:
        """Dispatched ops this controller is waiting on."""
        return len(self._trackers)


async def _cancelled(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel `tasks` and wait until each has ended. Python 3.11's `asyncio.wait_for` (which
    nats-py's fetch uses) can lose a cancellation that races its timeout, and a pull loop
    that lost one fetched on forever while `stop` waited (a test teardown hung 120 s): so the
    cancellation is sent again until the task ends. A task's own failure is logged."""
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.5)
    for task in tasks:
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.warning("%s ended with %r while stopping", task.get_name(), exc)
