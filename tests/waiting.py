"""Waiting on a condition with a deadline, never a fixed sleep: the one polling loop the
tests share, so a wait that runs out says what did not happen instead of "timed out"."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

POLL_S = 0.02
"""How often a condition is checked: short against every deadline, long enough not to spin."""


async def until(
    predicate: Callable[[], bool | Awaitable[bool]], *, what: str, within_s: float = 20.0
) -> None:
    """Return once `predicate()` (plain or awaitable) holds; `AssertionError` naming `what`
    (the thing that should have happened) if it still does not after `within_s` seconds."""
    deadline = time.monotonic() + within_s
    while True:
        held = predicate()
        if inspect.isawaitable(held):
            held = await held
        if held:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: did not happen within {within_s}s")
        await asyncio.sleep(POLL_S)


def until_blocking(predicate: Callable[[], bool], *, what: str, within_s: float = 20.0) -> None:
    """`until` for a synchronous test (one driving a subprocess, say): blocks the thread."""
    deadline = time.monotonic() + within_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: did not happen within {within_s}s")
        time.sleep(POLL_S)
