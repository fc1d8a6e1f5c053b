"""Run every contract case of every tool on every tier, then judge the answers.

Tiers run concurrently, each in its own PRVNG_HOME with a fresh mem:// state store; within
a tier, cases run one after another in one fixed order (set-up calls first), so cases
that depend on state see the same history everywhere.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Awaitable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from contracts.judge import REFERENCE, case_problems, listing_problems
from contracts.report import ALL_TIERS, LISTING, Report, Result
from contracts.tiers import TIERS
from contracts.tiers.base import Listing, Outcome, RegistryFactory, Tier, TierEnv
from daemons.common.settings import PROJECT_ROOT
from registry import ContractCase, NotFound, ToolSpec
from registry.errors import InvalidInput
from servers.assembly import build_registry

DEFAULT_TIERS = tuple(TIERS)
BROKEN_TIER = "(tier)"


@dataclass(frozen=True, slots=True)
class Step:
    spec: ToolSpec
    case: ContractCase


@dataclass(slots=True)
class TierRun:
    """What one tier answered, aligned with the plan."""

    tier: str
    outcomes: list[Outcome] = field(default_factory=list)
    setup_notes: list[list[str]] = field(default_factory=list)
    listing: Listing | None = None
    broken: str | None = None
    elapsed_s: float = 0.0


def _describe(exc: BaseException) -> str:
    """One line: the exception's type and the start of its message."""
    text = " ".join(str(exc).split())
    text = text if len(text) <= 300 else text[:297] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def _attempt(call: Awaitable[Outcome], within_s: float) -> Outcome:
    """The tier's outcome, or a no-answer outcome naming what broke."""
    try:
        async with asyncio.timeout(within_s):
            return await call
    except TimeoutError:
        return Outcome.no_answer(f"no answer within {within_s:g} s")
    except Exception as exc:  # a tier's failure to answer is a verdict, not a crash
        return Outcome.no_answer(_describe(exc))


async def _listing(tier: Tier) -> Listing:
    within_s = tier.env.call_timeout
    try:
        async with asyncio.timeout(within_s):
            return await tier.listing()
    except TimeoutError:
        return Listing("listing", problems=[f"no listing within {within_s:g} s"])
    except Exception as exc:  # reported like any broken answer
        return Listing("listing", problems=[_describe(exc)])


async def _run_tier(tier: Tier, plan: list[Step], with_listing: bool) -> TierRun:
    run = TierRun(tier.key)
    timeout = tier.env.call_timeout
    started = time.perf_counter()
    try:
        async with tier:
            if with_listing:
                run.listing = await _listing(tier)
            for step in plan:
                notes = []
                for call in step.case.setup:
                    setup = await _attempt(tier.setup(call), timeout)
                    if not setup.answered or setup.problems:
                        notes.append(f"set-up {call.tool} broke: {'; '.join(setup.problems)}")
                    elif not setup.ok:
                        notes.append(f"set-up {call.tool} answered {setup.summary()}")
                run.setup_notes.append(notes)
                run.outcomes.append(
                    await _attempt(tier.call(step.spec.name, step.case.args), timeout)
                )
    except Exception as exc:  # start-up or teardown failed: reported, other tiers go on
        run.broken = f"tier {tier.key} ({tier.name}): {_describe(exc)}"
    run.elapsed_s = time.perf_counter() - started
    return run


def _plan(specs: list[ToolSpec]) -> tuple[list[Step], list[Result]]:
    steps: list[Step] = []
    results: list[Result] = []
    for spec in specs:
        if not spec.cases:
            results.append(Result(spec.name, "(none)", ALL_TIERS, "failed", "no contract cases"))
        steps.extend(Step(spec, case) for case in spec.cases)
    return steps, results


def _judge(
    plan: list[Step], runs: list[TierRun], specs: list[ToolSpec], expectations: bool = True
) -> list[Result]:
    reference = next(run for run in runs if run.tier == REFERENCE)
    results = []
    for run in runs:
        if run.broken:
            results.append(Result(BROKEN_TIER, "start and stop", run.tier, "failed", run.broken))
        if run.listing is not None:
            ref_listing = reference.listing.data if reference.listing else None
            problems = listing_problems(run.listing, ref_listing, specs)
            results.append(_verdict(LISTING, run.listing.label, run.tier, problems, "ok"))
        for i, step in enumerate(plan):
            name, case = step.spec.name, step.case.name
            if i >= len(run.outcomes):
                results.append(Result(name, case, run.tier, "failed", f"not run: {run.broken}"))
                continue
            outcome = run.outcomes[i]
            ref = reference.outcomes[i] if i < len(reference.outcomes) else None
            problems = case_problems(
                step.spec, step.case, run.tier, outcome, ref, expectations=expectations
            )
            if problems:
                problems += run.setup_notes[i]
            results.append(_verdict(name, case, run.tier, problems, outcome.summary()))
    return results


def _verdict(tool: str, case: str, tier: str, problems: list[str], summary: str) -> Result:
    if problems:
        return Result(tool, case, tier, "failed", "; ".join(problems))
    return Result(tool, case, tier, "passed", summary)


def _select(specs: list[ToolSpec], tools: Collection[str] | None) -> list[ToolSpec]:
    if tools is None:
        return specs
    known = {spec.name for spec in specs}
    if unknown := sorted(set(tools) - known):
        raise NotFound(
            f"no tool named {', '.join(unknown)}; `prvng tools list` shows every tool",
            details={"tools": unknown},
        )
    return [spec for spec in specs if spec.name in tools]


def _tier_keys(tiers: Sequence[str]) -> list[str]:
    keys = [t.strip().upper() for t in tiers if t.strip()]
    if unknown := [k for k in keys if k not in TIERS]:
        raise InvalidInput(
            f"unknown tier {', '.join(unknown)}; choose from {', '.join(TIERS)}",
            details={"tiers": unknown},
        )
    return [k for k in TIERS if k in keys or k == REFERENCE]


async def run_contracts(
    registry_factory: RegistryFactory | None = None,
    tiers: Sequence[str] = DEFAULT_TIERS,
    *,
    tools: Collection[str] | None = None,
    workdir: Path | None = None,
    config_dir: Path | None = None,
    call_timeout: float = 30.0,
    role: str | None = None,
) -> Report:
    """Run the contract suite and return its report (tier A always runs: it is the reference).

    Args:
        registry_factory: builds a tier's registry from its `Settings`; defaults to
            `tools.build_registry`. Tier E (`prvng mcp`) always builds the default one.
        tiers: tier keys among A-E.
        tools: only these tools' cases (and the listing checks only with `tools.list`).
        workdir: where the tiers' homes go (default: a temporary directory, removed after).
        config_dir: the workspace config the cases read (default: the project's `config/`).
        role: call as a principal holding only this role (the role matrix): every tier
            must answer each case alike (allowed or the same error); case expectations,
            written for an admin, and the listings (filtered per caller) are not judged.
    """
    started = time.perf_counter()
    factory = registry_factory or build_registry
    keys = _tier_keys(tiers)
    with tempfile.TemporaryDirectory(prefix="prvng-contracts-") as tmp:
        root = workdir or Path(tmp)

        def env(name: str) -> TierEnv:
            return TierEnv.create(
                home=root / name / "home",
                config_dir=config_dir or PROJECT_ROOT / "config",
                cache_root=root / "cache",
                registry_factory=factory,
                call_timeout=call_timeout,
                role=role,
            )

        catalog = factory(env("catalog").settings)
        try:
            every_spec = catalog.list()
        finally:
            await catalog.aclose()
        plan, results = _plan(_select(every_spec, tools))
        with_listing = role is None and (tools is None or "tools.list" in tools)
        runs = await asyncio.gather(
            *(_run_tier(TIERS[key](env(f"tier-{key}")), plan, with_listing) for key in keys)
        )
        results += _judge(plan, list(runs), every_spec, expectations=role is None)
    return Report(
        tiers=keys,
        results=results,
        elapsed_s=time.perf_counter() - started,
        tier_s={run.tier: run.elapsed_s for run in runs},
    )
