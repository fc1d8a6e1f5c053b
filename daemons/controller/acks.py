"""`AckResult`: what the controller answers JetStream for a message, as a typed value."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from nats.aio.msg import Msg


@dataclass(frozen=True, slots=True)
class Ack:
    """Done with it (handled now, or handled before: redelivery of a finished op)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Nak:
    """Try again after `delay_s` (the orchestrator could not be reached)."""

    reason: str
    delay_s: float


@dataclass(frozen=True, slots=True)
class Term:
    """Never deliver again (a refused token, a replay, a dead letter)."""

    reason: str


AckResult = Ack | Nak | Term


class AckCounts(Counter[str]):
    """How many of each answer the controller gave (`/metrics` reads it)."""


async def answer(msg: Msg, result: AckResult, counts: AckCounts) -> None:
    counts[type(result).__name__.lower()] += 1
    if isinstance(result, Ack):
        await msg.ack()
    elif isinstance(result, Nak):
        await msg.nak(delay=result.delay_s)
    else:
        await msg.term()
