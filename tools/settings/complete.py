"""`settings.complete`: a partial workspace config with the schema's defaults filled in.

The partial value is written as Nickel under the workspace contract and evaluated, so the
defaults are the schema's own (config/schemas/server.ncl), never a copy of them; the
answer names every field the contract added.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from registry import ContractCase, InvalidInput, RestAlias, Risk, StrictModel, ToolContext, ToolSpec
from tools.settings.nickel_text import workspace_text
from tools.settings.source import evaluate_text, workspace_of
from tools.settings.validate import suggest


class CompleteInput(StrictModel):
    value: dict[str, Any] = Field(description="A partial workspace record, as JSON")


class CompleteOutput(StrictModel):
    value: dict[str, Any]
    filled: list[str] = Field(description="Fields the defaults added, as paths")
    nickel: str


def filled_paths(given: Any, full: Any, where: str = "") -> list[str]:
    """The paths present in `full` and absent from `given`."""
    if isinstance(full, dict) and isinstance(given, dict):
        found: list[str] = []
        for key, value in full.items():
            path = f"{where}.{key}" if where else str(key)
            found += [path] if key not in given else filled_paths(given[key], value, path)
        return found
    if isinstance(full, list) and isinstance(given, list):
        return [
            p
            for i, (g, f) in enumerate(zip(given, full, strict=False))
            for p in filled_paths(g, f, f"{where}[{i}]")
        ]
    return []


async def complete(args: CompleteInput, ctx: ToolContext) -> CompleteOutput:
    try:
        text = workspace_text(args.value, "completed by settings.complete")
    except TypeError as exc:
        raise InvalidInput(str(exc)) from None
    try:
        full = await evaluate_text(await workspace_of(ctx), text)
    except InvalidInput as exc:
        error = str(exc.details.get("error") or exc.message)
        fix = suggest(error, str(exc.details.get("nickel_error", "")))
        raise InvalidInput(
            f"the partial config cannot be completed: {error}; {fix}",
            details={"error": error, "fix": fix},
        ) from None
    return CompleteOutput(
        value=full,
        filled=filled_paths(args.value, full),
        nickel=workspace_text(full, "completed by settings.complete"),
    )


TOOLS = [
    ToolSpec(
        name="settings.complete",
        summary="Fill a partial workspace config with the schema's defaults, naming each one",
        input_model=CompleteInput,
        output_model=CompleteOutput,
        handler=complete,
        permission="config:read",
        risk=Risk.READ,
        idempotent=True,
        rest=RestAlias("POST", "/v1/settings/complete"),
        tags=("settings", "config"),
        cases=(
            ContractCase("one server", {"value": {"name": "home", "servers": [{"name": "web-1"}]}}),
            ContractCase("no name", {"value": {"servers": []}}, expect="invalid_input"),
        ),
    ),
]
