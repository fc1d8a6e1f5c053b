"""The harness's verdicts: one result per tool x case x tier, as JSON or a matrix."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["passed", "failed"]
LISTING = "(listing)"
ALL_TIERS = "*"


@dataclass(frozen=True, slots=True)
class Result:
    """One verdict; `tool` is `(listing)` for a tier's listing check, `tier` `*` for all."""

    tool: str
    case: str
    tier: str
    status: Status
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"


@dataclass(slots=True)
class Report:
    """Every verdict of a run, with the tiers it covered and how long it took."""

    tiers: list[str]
    results: list[Result] = field(default_factory=list)
    elapsed_s: float = 0.0
    tier_s: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> list[Result]:
        return [r for r in self.results if not r.passed]

    def summary(self) -> dict[str, Any]:
        """`tools` and `cases` count contract cases; `passed`/`failed` count results."""
        cases = {(r.tool, r.case) for r in self.results if r.tool != LISTING}
        return {
            "tools": len({tool for tool, _ in cases}),
            "cases": len(cases),
            "passed": sum(r.passed for r in self.results),
            "failed": sum(not r.passed for r in self.results),
            "elapsed_s": round(self.elapsed_s, 2),
            "tier_s": {tier: round(s, 2) for tier, s in self.tier_s.items()},
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "tiers": self.tiers,
            "results": [asdict(r) for r in self.results],
            "summary": self.summary(),
        }

    def render_table(self) -> str:
        """A tools x tiers matrix of passed/total, then every failure with its detail."""
        counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
        for r in self.results:
            for tier in self.tiers if r.tier == ALL_TIERS else [r.tier]:
                cell = counts[(r.tool, tier)]
                cell[0] += r.passed
                cell[1] += 1
        tools = sorted({r.tool for r in self.results}, key=lambda t: (t == LISTING, t))
        width = max([len(t) for t in tools] + [4])
        lines = ["tool".ljust(width) + "".join(f"  {t:>7}" for t in self.tiers)]
        for tool in tools:
            cells = []
            for tier in self.tiers:
                passed, total = counts.get((tool, tier), (0, 0))
                mark = f"{passed}/{total}" if total else "-"
                cells.append(f"  {mark:>7}")
            lines.append(tool.ljust(width) + "".join(cells))
        s = self.summary()
        lines.append(
            f"\n{s['tools']} tools, {s['cases']} cases, {s['passed']} passed, "
            f"{s['failed']} failed in {s['elapsed_s']:.1f} s "
            f"({', '.join(f'{t} {v:.1f} s' for t, v in s['tier_s'].items())})"
        )
        if self.failures:
            lines.append("\nFailures:")
            lines.extend(f"  [{r.tier}] {r.tool} / {r.case}: {r.detail}" for r in self.failures)
        return "\n".join(lines)
