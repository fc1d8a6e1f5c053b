"""One attempt of an action, and what to do after a failed one.

`execute` turns everything an action can do into an `Outcome`: a result, or an error
with retry advice. Retry advice follows the one policy of `actions.base.is_retryable`: a
timeout, `Unavailable` and `Internal` are retryable, other `PlatformError`s are not, an
`ActionError` says itself. An action's bug fails the attempt (retryably), never the engine.
Cancellation is not caught: the engine accounts for it.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from typing import Any

from daemons.orchestrator.actions.base import Action, ActionContext, is_retryable
from daemons.orchestrator.model import RetryPolicy
from registry.errors import PlatformError

log = logging.getLogger("prvng.orchestrator.attempt")


@dataclass(frozen=True, slots=True)
class Outcome:
    result: dict[str, Any] | None = None
    error: str | None = None
    retryable: bool = True


async def execute(
    action: Action | None,
    name: str,
    params: dict[str, Any],
    ctx: ActionContext,
    timeout_s: float | None,
) -> Outcome:
    """Run action `name` once with `params`, within `timeout_s`."""
    if action is None:
        return Outcome(error=f"action {name!r} is not available here", retryable=False)
    timeout = asyncio.timeout(timeout_s)
    try:
        model = action.params_model.model_validate(params)
        async with timeout:
            return Outcome(result=await action.run(model, ctx))
    except TimeoutError:
        if not timeout.expired():
            return Outcome(error="TimeoutError: raised by the action")
        return Outcome(error=f"timed out after {timeout_s:g}s")
    except PlatformError as exc:
        return Outcome(error=exc.message, retryable=is_retryable(exc))
    except Exception as exc:  # an action's bug
        log.exception("action %s raised (%s)", name, ctx.idempotency_key)
        return Outcome(error=f"{type(exc).__name__}: {exc}")


def backoff_delay(policy: RetryPolicy, failed_attempt: int, rng: random.Random) -> float:
    """Seconds before the next attempt: exponential, capped, with ± `jitter` spread."""
    delay = min(policy.max_backoff_s, policy.backoff_s * 2 ** (failed_attempt - 1))
    return max(0.0, delay * (1 + rng.uniform(-policy.jitter, policy.jitter)))
