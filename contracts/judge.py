"""Verdicts: does one tier's answer meet the case, its schema, and agree with tier A?"""

from __future__ import annotations

from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from pydantic import BaseModel

from contracts.normalize import differences, normalize
from contracts.tiers.base import Listing, Outcome
from registry import ContractCase, Risk, ToolListing, ToolSpec, listing_output_schema
from registry.schema import compact_input_schema, compact_output_schema, output_schema

REFERENCE = "A"


@cache
def _validator(model: type[BaseModel]) -> Draft202012Validator:
    schema = listing_output_schema() if model is ToolListing else output_schema(model)
    return Draft202012Validator(schema)


def _listing_validator() -> Draft202012Validator:
    return _validator(ToolListing)


def schema_problems(validator: Draft202012Validator, data: Any, what: str) -> list[str]:
    """The first few schema violations of `data`, each with its JSON path."""
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    return [
        f"{what} violates its schema at /{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}"
        for e in errors[:3]
    ]


def _message(outcome: Outcome) -> str:
    message = (outcome.error or {}).get("message", "")
    return f"{outcome.code}: {message}" if message else str(outcome.code)


def expectation_problems(case: ContractCase, outcome: Outcome) -> list[str]:
    if case.expects_ok and not outcome.ok:
        return [f"expected ok, got {_message(outcome)}"]
    if not case.expects_ok and outcome.ok:
        return [f"expected {case.expect}, got ok"]
    if not case.expects_ok and outcome.code != case.expect:
        return [f"expected {case.expect}, got {_message(outcome)}"]
    return []


def comparison_problems(
    reference: Outcome | None, outcome: Outcome, volatile_paths: tuple[str, ...]
) -> list[str]:
    """How `outcome` disagrees with tier A's answer to the same call."""
    if reference is None or not reference.answered:
        return [f"no reference: tier {REFERENCE} gave no answer to compare with"]
    if reference.ok != outcome.ok:
        return [f"tier {REFERENCE} answered {reference.summary()}, this tier {outcome.summary()}"]
    if not outcome.ok:
        if reference.code != outcome.code:
            return [f"error code {outcome.code}, tier {REFERENCE} says {reference.code}"]
        return []
    diff = differences(
        normalize(reference.data, volatile_paths), normalize(outcome.data, volatile_paths)
    )
    return [f"data differs from tier {REFERENCE}: " + "; ".join(diff)] if diff else []


def case_problems(
    spec: ToolSpec,
    case: ContractCase,
    tier: str,
    outcome: Outcome,
    reference: Outcome | None,
    *,
    expectations: bool = True,
) -> list[str]:
    """Everything wrong with one tier's answer to one contract case (empty: it passed).

    Without `expectations` (the role matrix) only agreement with the reference counts."""
    problems = list(outcome.problems)
    if not outcome.answered:
        return problems
    if expectations:
        problems += expectation_problems(case, outcome)
    if outcome.ok:
        problems += schema_problems(_validator(spec.output_model), outcome.data, "output")
    if tier != REFERENCE:
        problems += comparison_problems(reference, outcome, spec.volatile_paths)
    return problems


def listing_problems(listing: Listing, reference: Any, specs: list[ToolSpec]) -> list[str]:
    """A tier's own listing: valid, and the same as tier A's (MCP: same tools and schemas)."""
    problems = list(listing.problems)
    if listing.mcp_tools is not None:
        return problems + _mcp_listing_problems(listing.mcp_tools, specs)
    if listing.data is None:
        return problems or ["no listing"]
    problems += schema_problems(_listing_validator(), listing.data, "listing")
    if reference is None:
        return [*problems, f"no reference: tier {REFERENCE} gave no listing"]
    diff = differences(reference, listing.data)
    if diff:
        problems.append(f"listing differs from tier {REFERENCE}: " + "; ".join(diff))
    return problems


_MCP_HINT_DEFAULTS = {"read_only": False, "destructive": True, "idempotent": False}


def _mcp_listing_problems(tools: list[dict[str, Any]], specs: list[ToolSpec]) -> list[str]:
    by_name = {tool["name"]: tool for tool in tools}
    expected = {spec.name for spec in specs}
    problems = []
    if missing := sorted(expected - by_name.keys()):
        problems.append(f"tools missing: {', '.join(missing)}")
    if extra := sorted(by_name.keys() - expected):
        problems.append(f"tools not in the registry: {', '.join(extra)}")
    for spec in specs:
        tool = by_name.get(spec.name)
        if tool is None:
            continue
        for field, want in (
            ("input_schema", compact_input_schema(spec.input_model)),
            ("output_schema", compact_output_schema(spec.output_model)),
        ):
            if diff := differences(want, tool[field], limit=2):
                problems.append(f"{spec.name} {field} differs: " + "; ".join(diff))
        hints: dict[str, bool] = {"read_only": spec.read_only}
        if not spec.read_only:  # MCP: the other hints only mean something for writers
            hints.update(destructive=spec.risk is Risk.DESTRUCTIVE, idempotent=spec.idempotent)
        # An unset hint means MCP's default: read-write, destructive, not idempotent.
        got = {k: _MCP_HINT_DEFAULTS[k] if tool[k] is None else tool[k] for k in hints}
        wrong = [f"{k}={got[k]} (want {v})" for k, v in hints.items() if got[k] is not v]
        if wrong:
            problems.append(f"{spec.name} annotations: {', '.join(wrong)}")
    return problems
