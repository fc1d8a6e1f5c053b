"""Encoding and parsing in bounded steps give exactly what the one-piece calls give."""

from __future__ import annotations

import json
from typing import Any

import pytest

from daemons.ops.steps import canonical_in_steps, loads_in_steps
from registry.canonical import canonical_json

VALUES: list[Any] = [
    {},
    [],
    {"b": [1, 2.5, None, True], "a": {"z": "ü", "y": [{"k": "v"}] * 300}},
    {"tasks": [{"id": f"t{i}", "params": {"n": i, "s": 'x\n"' * 3}} for i in range(1000)]},
    [[i, {"i": i}] for i in range(500)],
    "just a string",
    7,
    {"deep": [[[[[[{"a": [1, 2, {"b": "c"}]}]]]]]]},
]


@pytest.mark.parametrize("value", VALUES)
async def test_canonical_in_steps_is_canonical_json(value: Any) -> None:
    encoded = await canonical_in_steps(value)
    assert encoded == canonical_json(value)
    assert await loads_in_steps(encoded) == json.loads(encoded)


@pytest.mark.parametrize(
    "text",
    [
        ' { "a" : [ 1 , 2 ] , "b" : { "c" : [ ] } , "a" : "last wins" } ',
        '[ {"x": 1}, [ ], { } ]',
        '{"k": {"l": {"m": {"n": [1, {"o": 2}]}}}}',
    ],
)
async def test_loads_in_steps_is_json_loads(text: str) -> None:
    assert await loads_in_steps(text.encode()) == json.loads(text)


@pytest.mark.parametrize(
    "text", ['{"a": 1,}', "[1, 2", "{1: 2}", '{"a" 1}', "[1] [2]", '{"a": [1,]}', "", "[1 2]"]
)
async def test_loads_in_steps_refuses_what_json_loads_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        json.loads(text)
    with pytest.raises(ValueError):
        await loads_in_steps(text.encode())
