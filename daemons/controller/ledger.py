"""The controller's idempotency ledger in SurrealDB: `op:<jti>`.

`dispatched → succeeded | failed`, or `dead_lettered`. The record is created by the
controller that claims the op, with a create that fails when the record exists: that
create is the `received → dispatched` compare-and-set (one statement instead of two on
the hot path), so of two controllers holding one op, exactly one claims it. Later
transitions are compare-and-sets on `state`; the ends reached in one loop turn are
written together, one conditional update per kind of end. The record keeps the stream
sequence of the message that introduced the jti: the same jti in another message is a
replay.
"""

from __future__ import annotations

import asyncio
from enum import StrEnum
from typing import Any

from daemons.common.state import StateStore
from daemons.ops.model import OpsClaims
from registry.errors import Conflict
from registry.timestamps import utc_now_iso

TABLE = "op"


class OpState(StrEnum):
    DISPATCHED = "dispatched"
    """Claimed by `owner`: submitted to the executor, or about to be."""
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DEAD_LETTERED = "dead_lettered"


TERMINAL = frozenset({OpState.SUCCEEDED, OpState.FAILED, OpState.DEAD_LETTERED})


class Ledger:
    def __init__(self, state: StateStore) -> None:
        self._state = state
        self._ends: dict[tuple[OpState, str, str], list[tuple[str, asyncio.Future[bool]]]] = {}
        self._flushing: set[asyncio.Task[None]] = set()

    async def claim(
        self, claims: OpsClaims, stream_seq: int, owner: str
    ) -> tuple[bool, dict[str, Any]]:
        """`(True, record)` when this call claimed the op; `(False, existing record)` when
        it was claimed before (by anyone, from any message)."""
        record = {
            "state": OpState.DISPATCHED.value,
            "stream_seq": stream_seq,
            "op_type": claims.op_type,
            "trace_id": claims.trace_id,
            "requester": claims.sub,
            "approvers": claims.approvers,
            "owner": owner,
            "dispatched_at": utc_now_iso(),
            "detail": "",
        }
        try:
            await self._state.insert(TABLE, claims.jti, record)
        except Conflict:
            existing = await self._state.get(TABLE, claims.jti)
            if existing is not None:
                return False, existing
            await self._state.insert(TABLE, claims.jti, record)  # deleted meanwhile
        return True, record

    async def get(self, jti: str) -> dict[str, Any] | None:
        return await self._state.get(TABLE, jti)

    async def finish(self, jti: str, state: OpState, detail: str = "", code: str = "") -> bool:
        """`dispatched → succeeded | failed | dead_lettered`; False if it was not dispatched.
        `code`: the error code of the executor's refusal (what a waiting tool answers)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[bool] = loop.create_future()
        if not self._ends:  # the first end of this turn: written once the turn is over
            task = loop.create_task(self._write_ends())
            self._flushing.add(task)
            task.add_done_callback(self._flushing.discard)
        self._ends.setdefault((state, detail, code), []).append((jti, done))
        return await asyncio.shield(done)

    async def _write_ends(self) -> None:
        ends, self._ends = self._ends, {}
        for (state, detail, code), waiting in ends.items():
            change = {"state": state.value, "detail": detail, "finished_at": utc_now_iso()}
            if code:
                change["code"] = code
            try:
                changed = await self._state.update_many_if(
                    TABLE,
                    [jti for jti, _ in waiting],
                    change,
                    field="state",
                    expected=[OpState.DISPATCHED.value],
                )
            except Exception as exc:  # handed to every caller waiting on it
                for _, done in waiting:
                    done.set_exception(exc)
                continue
            for jti, done in waiting:
                done.set_result(jti in changed)
                changed.discard(jti)  # the same op ended twice: the second did not change it

    async def note(self, jti: str, detail: str) -> None:
        """Why a dispatched op waits (the executor could not take it yet)."""
        await self._state.update_if(
            TABLE, jti, {"detail": detail}, field="state", expected=[OpState.DISPATCHED.value]
        )

    async def in_state(self, state: OpState) -> list[dict[str, Any]]:
        return list(
            await self._state.query(f"SELECT * FROM {TABLE} WHERE state = $s", {"s": state.value})
        )
