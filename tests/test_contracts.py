"""The tier-equivalence suite: every tool's cases agree on all five tiers, and the
harness does fail when a tool or a tier gets its contract wrong."""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import mcp_types
import pytest
from pydantic import WithJsonSchema

from contracts import DEFAULT_TIERS, Report, run_contracts
from contracts.__main__ import main
from contracts.normalize import differences, normalize
from contracts.report import LISTING
from contracts.tiers.base import envelope_problems
from contracts.tiers.mcp import outcome_from_result
from daemons.common.settings import Settings
from registry import ContractCase, Registry, StrictModel, ToolContext, ToolSpec
from registry.model import Handler
from servers.assembly import build_registry
from tools import all_specs


@pytest.fixture(scope="module")
def full_report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Report]:
    """One full run (every tool, every case, tiers A-E), shared by the module's tests."""
    workdir = tmp_path_factory.mktemp("contracts")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("XDG_CACHE_HOME", str(workdir / "cache"))
        yield asyncio.run(run_contracts(workdir=workdir))


def test_every_case_passes_on_every_tier(full_report: Report) -> None:
    assert full_report.ok, full_report.render_table()


def test_every_tool_case_and_tier_is_covered(full_report: Report) -> None:
    assert full_report.tiers == list(DEFAULT_TIERS) == ["A", "B", "C", "D", "E"]
    seen = Counter((r.tool, r.case) for r in full_report.results if r.tool != LISTING)
    expected = {(spec.name, case.name) for spec in all_specs() for case in spec.cases}
    assert set(seen) == expected
    assert all(count == len(DEFAULT_TIERS) for count in seen.values()), seen
    listing_tiers = sorted(r.tier for r in full_report.results if r.tool == LISTING)
    assert listing_tiers == ["A", "B", "C", "D", "E"]
    summary = full_report.summary()
    assert summary["cases"] == len(expected)
    assert summary["passed"] == len(full_report.results)


def test_no_case_waits_out_its_call_timeout(full_report: Report) -> None:
    """Every tier answers every call: none is judged on a timeout (the suite's time goal
    is in `bench/contract_suite.py`)."""
    print(f"\ncontract suite: {full_report.summary()}")
    assert sorted(full_report.tier_s) == full_report.tiers
    waited = [r for r in full_report.results if "no answer within" in r.detail]
    assert waited == []


# -- the harness can fail --------------------------------------------------------------


class HomeOutput(StrictModel):
    home: str


class CountOutput(StrictModel):
    # The published schema lies: it says integer, the data is text.
    count: Annotated[str, WithJsonSchema({"type": "integer"})]


class NoInput(StrictModel):
    pass


async def _home(args: NoInput, ctx: ToolContext) -> HomeOutput:
    settings = await ctx.resource(Settings)
    return HomeOutput(home=str(settings.home))


async def _count(args: NoInput, ctx: ToolContext) -> CountOutput:
    return CountOutput(count="3")


def _spec(
    name: str,
    handler: Handler,
    output: type[StrictModel],
    cases: tuple[ContractCase, ...] = (),
    volatile_paths: tuple[str, ...] = (),
) -> ToolSpec:
    return ToolSpec(
        name=name,
        summary=f"contract harness probe {name}",
        input_model=NoInput,
        output_model=output,
        handler=handler,
        permission="probe:read",
        cases=cases,
        volatile_paths=volatile_paths,
    )


PROBES = [
    _spec("probe.uncased", _home, HomeOutput),
    # Per-tier data not declared volatile: a tier answers differently from tier A.
    _spec("probe.divergent", _home, HomeOutput, cases=(ContractCase("home"),)),
    _spec(
        "probe.declared",
        _home,
        HomeOutput,
        cases=(ContractCase("home"),),
        volatile_paths=("home",),
    ),
    _spec("probe.lying", _count, CountOutput, cases=(ContractCase("count"),)),
    _spec(
        "probe.wrong_expect",
        _home,
        HomeOutput,
        cases=(ContractCase("x", expect="not_found"),),
        volatile_paths=("home",),
    ),
]


def _probe_registry(settings: Settings) -> Registry:
    registry = build_registry(settings)
    registry.extend(PROBES)
    return registry


@pytest.fixture(scope="module")
def probe_report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    workdir = tmp_path_factory.mktemp("probes")
    return asyncio.run(
        run_contracts(
            _probe_registry,
            tiers=("A", "B", "C"),
            tools=[spec.name for spec in PROBES],
            workdir=workdir,
        )
    )


def _by_tool(report: Report, tool: str) -> dict[str, str]:
    return {r.tier: r.detail for r in report.results if r.tool == tool and r.status == "failed"}


def test_a_tool_without_cases_fails_the_suite(probe_report: Report) -> None:
    assert not probe_report.ok
    [result] = [r for r in probe_report.results if r.tool == "probe.uncased"]
    assert (result.status, result.detail) == ("failed", "no contract cases")


def test_a_tier_that_answers_differently_fails(probe_report: Report) -> None:
    failed = _by_tool(probe_report, "probe.divergent")
    assert sorted(failed) == ["B", "C"]
    for tier, detail in failed.items():
        assert "data differs from tier A: home:" in detail
        assert f"tier-{tier}/home" in detail


def test_declared_volatile_fields_are_not_compared(probe_report: Report) -> None:
    results = [r for r in probe_report.results if r.tool == "probe.declared"]
    assert [(r.tier, r.status) for r in results] == [
        ("A", "passed"),
        ("B", "passed"),
        ("C", "passed"),
    ]


def test_output_that_violates_its_schema_fails_on_every_tier(probe_report: Report) -> None:
    failed = _by_tool(probe_report, "probe.lying")
    assert sorted(failed) == ["A", "B", "C"]
    assert "output violates its schema at /count: '3' is not of type 'integer'" in failed["A"]


def test_an_unmet_expectation_fails(probe_report: Report) -> None:
    failed = _by_tool(probe_report, "probe.wrong_expect")
    assert sorted(failed) == ["A", "B", "C"]
    assert all("expected not_found, got ok" in d for d in failed.values())


def test_a_tier_that_cannot_start_is_reported(tmp_path: Path) -> None:
    def factory(settings: Settings) -> Registry:
        if settings.home.parent.name == "tier-B":
            raise RuntimeError("no registry for tier B today")
        return build_registry(settings)

    report = asyncio.run(
        run_contracts(factory, tiers=("A", "B"), tools=["platform.health"], workdir=tmp_path)
    )
    failed = {(r.tool, r.case, r.tier): r.detail for r in report.failures}
    broken = "tier B (http): RuntimeError: no registry for tier B today"
    assert failed == {
        ("(tier)", "start and stop", "B"): broken,
        ("platform.health", "healthy", "B"): f"not run: {broken}",
        ("platform.health", "rejects arguments", "B"): f"not run: {broken}",
    }


# -- normalisation and the command line ------------------------------------------------


def test_volatile_paths_mask_values_but_keep_their_presence() -> None:
    a = {"servers": [{"n": 1, "at": "x"}], "trace_id": "t1"}
    b = {"servers": [{"n": 1, "at": "y"}], "trace_id": "t2"}
    assert normalize(a, ["servers.*.at"]) == normalize(b, ["servers.*.at"])
    assert differences(normalize(a), normalize(b)) == ["servers.0.at: 'x' != 'y'"]
    without = {"servers": [{"n": 1}], "trace_id": "t3"}
    assert differences(normalize(a, ["servers.*.at"]), normalize(without, ["servers.*.at"])) == [
        "servers.0.at: missing"
    ]
    assert differences({"v": True}, {"v": 1}) == ["v: True != 1"]
    assert differences({"v": 1}, {"v": 1.0}) == []


def test_malformed_answers_are_reported_as_problems() -> None:
    assert envelope_problems({"ok": True, "data": 1}) == [
        "envelope has no trace_id",
        "envelope timestamp None is not ISO 8601",
    ]
    half_error = {"ok": False, "error": {"code": "conflict"}, "trace_id": "t", "timestamp": "x"}
    assert envelope_problems(half_error) == [
        "error.message is missing or empty",
        "error.details is missing or not an object",
        "envelope timestamp 'x' is not ISO 8601",
    ]
    text_only = mcp_types.CallToolResult(
        content=[mcp_types.TextContent(type="text", text="boom")], is_error=True
    )
    outcome = outcome_from_result(text_only)
    assert not outcome.answered
    assert outcome.problems == ["isError without a structured error: 'boom'"]


def test_cli_prints_json_and_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--format", "json", "--tiers", "A", "--tool", "platform.info"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["tiers"] == ["A"]
    summary = out["summary"]
    assert [summary[k] for k in ("tools", "cases", "passed", "failed")] == [1, 2, 2, 0]
    assert set(summary["tier_s"]) == {"A"}
    assert {r["case"] for r in out["results"]} == {"describes itself", "rejects arguments"}


def test_cli_rejects_an_unknown_tier(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--tiers", "A,Z"]) == 2
    assert "unknown tier Z" in capsys.readouterr().err


def test_table_shows_the_matrix_and_every_failure(tmp_path: Path) -> None:
    report = asyncio.run(
        run_contracts(_probe_registry, tiers=("A",), tools=["probe.wrong_expect"], workdir=tmp_path)
    )
    table = report.render_table()
    assert re.search(r"^probe\.wrong_expect +0/1$", table, re.MULTILINE), table
    assert "[A] probe.wrong_expect / x: expected not_found, got ok" in table
