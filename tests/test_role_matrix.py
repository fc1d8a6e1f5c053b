"""The role-matrix contract: every tool's cases x each built-in role x tiers A-E give the
same decision and the same error code (admin is the ordinary contract run)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from contracts import run_contracts


@pytest.mark.timeout(300)
@pytest.mark.parametrize("role", ["viewer", "operator", "approver"])
def test_every_tier_decides_alike_for(role: str, tmp_path: Path) -> None:
    report = asyncio.run(run_contracts(workdir=tmp_path, role=role))
    failed = [r for r in report.results if r.status != "passed"]
    assert not failed, "\n".join(f"{r.tool} / {r.case} / {r.tier}: {r.detail}" for r in failed)
    refused = {r.tool for r in report.results if r.detail == "error forbidden"}
    assert {"user.create", "role.assign"} <= refused, "the matrix must see refusals"
    assert len({r.tier for r in report.results}) == 5
