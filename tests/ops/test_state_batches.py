"""Creates and conditional updates written together still answer each caller alone:
the hot paths batch them (one statement per loop turn), so who won must not blur."""

from __future__ import annotations

import asyncio

import pytest

from daemons.common.state import StateStore
from daemons.controller.ledger import Ledger, OpState
from registry.errors import Conflict


async def test_concurrent_inserts_of_one_key_create_it_once() -> None:
    async with StateStore.open("mem://") as state:
        await state.insert("op", "old", {"n": 0})
        results = await asyncio.gather(
            *(state.insert("op", key, {"n": i}) for i, key in enumerate(["a", "b", "a", "old"])),
            return_exceptions=True,
        )
        assert [type(r).__name__ for r in results] == [
            "NoneType",
            "NoneType",
            "Conflict",
            "Conflict",
        ]
        assert (await state.get("op", "a")) == {"id": "a", "n": 0}
        assert (await state.get("op", "old")) == {"id": "old", "n": 0}
        with pytest.raises(Conflict):
            await state.insert("op", "b", {"n": 9})


async def test_two_writers_of_the_same_keys_in_one_turn_never_both_create_one() -> None:
    async with StateStore.open("mem://") as state:
        keys = [f"k{i}" for i in range(50)]
        first = asyncio.gather(
            *(state.insert("op", k, {"by": 1}) for k in keys), return_exceptions=True
        )
        second = asyncio.gather(
            *(state.insert("op", k, {"by": 2}) for k in keys), return_exceptions=True
        )
        a, b = await asyncio.gather(first, second)
        for key, x, y in zip(keys, a, b, strict=True):
            assert (x is None) != (y is None), key  # exactly one of the two created it
            record = await state.get("op", key)
            assert record is not None
            assert record["by"] == (1 if x is None else 2)


async def test_update_many_if_changes_only_the_records_whose_condition_holds() -> None:
    async with StateStore.open("mem://") as state:
        for key, value in (("a", "d"), ("b", "d"), ("c", "s")):
            await state.insert("op", key, {"state": value})
        changed = await state.update_many_if(
            "op", ["a", "c", "missing", "a"], {"state": "s"}, field="state", expected=["d"]
        )
        assert changed == {"a"}
        assert [(await state.get("op", k) or {}).get("state") for k in "abc"] == ["s", "d", "s"]


async def test_an_op_ended_twice_in_one_turn_ends_once() -> None:
    async with StateStore.open("mem://") as state:
        await state.insert("op", "op-1", {"state": OpState.DISPATCHED.value})
        await state.insert("op", "op-2", {"state": OpState.SUCCEEDED.value})
        ledger = Ledger(state)
        results = await asyncio.gather(
            ledger.finish("op-1", OpState.SUCCEEDED),
            ledger.finish("op-1", OpState.FAILED, "late"),
            ledger.finish("op-1", OpState.SUCCEEDED),
            ledger.finish("op-2", OpState.FAILED),
        )
        assert results == [True, False, False, False]
        assert (await ledger.get("op-1") or {})["state"] == OpState.SUCCEEDED
        assert (await ledger.get("op-2") or {})["state"] == OpState.SUCCEEDED


async def test_a_row_the_store_refuses_fails_only_its_own_insert() -> None:
    async with StateStore.open("mem://") as state:
        results = await asyncio.gather(
            state.insert("op", "good", {"n": 1}),
            state.insert("op", "bad", {"n": object()}),
            state.insert("op", "fine", {"n": 2}),
            return_exceptions=True,
        )
        assert results[0] is None and results[2] is None
        assert isinstance(results[1], Exception)
        assert await state.get("op", "good") == {"id": "good", "n": 1}
        assert await state.get("op", "bad") is None
