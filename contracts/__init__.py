"""The tier-equivalence harness: every contract case of every tool, on every tier.

Tiers: A `Registry.invoke` (the reference), B HTTP on a real socket, C MCP in process,
D the `prvng` CLI as a subprocess, E `prvng mcp` over stdio. Each answer must meet its
case's `expect`, validate against the tool's output schema, and equal tier A's answer once
volatile fields are masked (`trace_id`, `timestamp`, the tool's `volatile_paths`).

Adding a tool: give its `ToolSpec` contract cases (`ContractCase(name, args, expect=...,
setup=(Call(...),))`) and declare fields that differ per call in `volatile_paths`; a tool
without cases fails the suite. Then run `python -m contracts --tool NAME`, or in code:

    report = await run_contracts(registry_factory=my_factory, tiers=("A", "B", "C"))
    assert report.ok, report.render_table()
"""

from contracts.harness import DEFAULT_TIERS, run_contracts
from contracts.report import Report, Result

__all__ = ["DEFAULT_TIERS", "Report", "Result", "run_contracts"]
