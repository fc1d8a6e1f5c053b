"""The controller's idempotency ledger in SurrealDB: `op:<jti>`.

`received → dispatched → succeeded | failed`, or `dead_lettered`; each transition is a
compare-and-set on `state`, so of two controllers holding one op, one dispatches.
The record keeps the stream sequence of the message that introduced the jti: the same
jti in another message is a replay.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from daemons.common.state import StateStore
from daemons.ops.model import OpRequest, OpsClaims
from registry.errors import Conflict
from registry.timestamps import utc_now_iso

TABLE = "op"


class OpState(StrEnum):
    RECEIVED = "received"
    DISPATCHED = "dispatched"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DEAD_LETTERED = "dead_lettered"


TERMINAL = frozenset({OpState.SUCCEEDED, OpState.FAILED, OpState.DEAD_LETTERED})


class Ledger:
    def __init__(self, state: StateStore) -> None:
        self._state = state

    async def receive(self, claims: OpsClaims, op: OpRequest, stream_seq: int) -> dict[str, Any]:
        """The op's record, created `received` on first sight."""
        record = {
            "state": OpState.RECEIVED.value,
            "stream_seq": stream_seq,
            "op": op.model_dump(mode="json"),
            "claims": claims.model_dump(mode="json"),
            "received_at": utc_now_iso(),
            "owner": None,
            "detail": "",
        }
        try:
            return await self._state.create(TABLE, claims.jti, record)
        except Conflict:
            existing = await self._state.get(TABLE, claims.jti)
            if existing is None:  # deleted meanwhile: nothing to protect any more
                return await self._state.create(TABLE, claims.jti, record)
            return existing

    async def get(self, jti: str) -> dict[str, Any] | None:
        return await self._state.get(TABLE, jti)

    async def claim(self, jti: str, owner: str) -> bool:
        """`received → dispatched` for `owner`; False when someone else got there first."""
        change = {"state": OpState.DISPATCHED.value, "owner": owner, "dispatched_at": utc_now_iso()}
        return (
            await self._state.update_if(
                TABLE, jti, change, field="state", expected=[OpState.RECEIVED.value]
            )
            is not None
        )

    async def finish(self, jti: str, state: OpState, detail: str = "") -> bool:
        """`received | dispatched → succeeded | failed | dead_lettered`; False if already so."""
        change = {"state": state.value, "detail": detail, "finished_at": utc_now_iso()}
        expected = [OpState.RECEIVED.value, OpState.DISPATCHED.value]
        return (
            await self._state.update_if(TABLE, jti, change, field="state", expected=expected)
            is not None
        )

    async def in_state(self, state: OpState) -> list[dict[str, Any]]:
        return list(
            await self._state.query(f"SELECT * FROM {TABLE} WHERE state = $s", {"s": state.value})
        )
