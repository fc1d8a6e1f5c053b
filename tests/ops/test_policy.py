"""Keeper policies: the shipped rules, glob edge cases, first match, default deny, and the
Nickel contract refusing a malformed policy file."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemons.common.settings import PROJECT_ROOT
from daemons.keeper import Policy, PolicyDef, load_policy
from daemons.keeper.policy import DEFAULT_DENY
from daemons.ops import Decision
from ops.helpers import noop_op
from registry.errors import InvalidInput

SCHEMA = PROJECT_ROOT / "config" / "schemas" / "keeper_policy.ncl"
AUTO, ASK, DENY = Decision.AUTO_APPROVE, Decision.REQUIRE_APPROVAL, Decision.DENY


@pytest.fixture(scope="module")
def shipped() -> Policy:
    return load_policy(PROJECT_ROOT / "config" / "keeper_policy.ncl")


@pytest.mark.parametrize(
    ("op_type", "provider", "labels", "risk", "rule", "decision"),
    [
        ("server.create", "local", {"env": "dev"}, "write", "dev", AUTO),
        ("server.delete", "cloud", {"env": "dev"}, "destructive", "dev", AUTO),
        ("server.create", "local", {}, "write", "local-unlabelled", AUTO),
        ("server.delete", "local", {}, "destructive", "local-unlabelled", AUTO),
        ("server.create", "local", {"env": "prod"}, "write", "prod-needs-approval", ASK),
        ("server.delete", "cloud", {"env": "prod"}, "destructive", "prod-needs-approval", ASK),
        ("server.plan", "cloud", {"env": "prod"}, "read", "plans", AUTO),
        (
            "server.delete",
            "cloud",
            {"env": "stage"},
            "destructive",
            "destructive-needs-approval",
            ASK,
        ),
        ("server.create", "cloud", {"env": "stage"}, "write", DEFAULT_DENY, DENY),
        ("server.create", "cloud", {}, "write", DEFAULT_DENY, DENY),
        # labelled, so not "unlabelled local"; and `production` is not `prod`
        ("server.create", "local", {"env": "stage"}, "write", DEFAULT_DENY, DENY),
        ("server.create", "cloud", {"env": "production"}, "write", DEFAULT_DENY, DENY),
        # a plan that writes is not a plan
        ("server.plan", "cloud", {"env": "stage"}, "write", DEFAULT_DENY, DENY),
    ],
)
def test_shipped_policy(
    shipped: Policy,
    op_type: str,
    provider: str,
    labels: dict[str, str],
    risk: str,
    rule: str,
    decision: Decision,
) -> None:
    op = noop_op(op_type=op_type, provider=provider, labels=labels, risk=risk)
    chosen = shipped.decide(op)
    assert (chosen.name, chosen.decision) == (rule, decision)


def test_shipped_policy_asks_one_approver_role() -> None:
    rule = load_policy(PROJECT_ROOT / "config" / "keeper_policy.ncl").rules[1]
    assert (rule.approvals, rule.approver_roles) == (1, ["approver", "admin"])


def test_first_match_wins_and_nothing_matching_is_denied() -> None:
    policy = Policy(
        rules=[
            PolicyDef(name="web-auto", targets=["web-?"], decision=AUTO),
            PolicyDef(name="servers-ask", ops=["server.*"], decision=ASK),
        ]
    )
    assert policy.decide(noop_op("web-1")).name == "web-auto"
    assert policy.decide(noop_op("web-10")).name == "servers-ask"  # `?` is one character
    assert policy.decide(noop_op("web-10", op_type="taskserv.create")).name == DEFAULT_DENY
    assert Policy().decide(noop_op()).decision is DENY


def test_every_image_must_match_a_listed_pattern() -> None:
    rule = PolicyDef(name="noop-only", images=["noop", "sleep*"], decision=AUTO)
    assert rule.matches(noop_op(images=["noop"]))
    assert rule.matches(noop_op(images=["noop", "sleep"]))
    assert not rule.matches(noop_op(images=["noop", "shell"]))  # one unlisted action
    assert not rule.matches(noop_op(images=[]))  # nothing to vouch for
    assert PolicyDef(name="any", decision=AUTO).matches(noop_op(images=[]))


def test_label_globs_need_every_key() -> None:
    rule = PolicyDef(name="dev-web", labels={"env": "dev*", "tier": "web"}, decision=AUTO)
    assert rule.matches(noop_op(labels={"env": "dev-2", "tier": "web", "x": "y"}))
    assert not rule.matches(noop_op(labels={"env": "dev-2"}))
    assert not rule.matches(noop_op(labels={"env": "prod", "tier": "web"}))


def _policy_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "policy.ncl"
    path.write_text(f'let p = import "{SCHEMA}" in\n{body} | p.Policy\n')
    return path


@pytest.mark.parametrize(
    ("rules", "culprit"),
    [
        ("""[{ name = "x", decision = 'maybe }]""", "decision"),
        ("""[{ name = "x", decision = 'require_approval, approvals = 0 }]""", "approvals"),
        ("""[{ name = "x", decision = 'deny, risks = ['fatal] }]""", "risks"),
        ("""[{ decision = 'deny }]""", "name"),
        ("""[{ name = "x", decision = 'deny, ops = [""] }]""", "ops"),
    ],
)
def test_the_nickel_contract_refuses_a_malformed_policy(
    tmp_path: Path, rules: str, culprit: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        load_policy(_policy_file(tmp_path, f"{{ rules = {rules} }}"))
    assert str(tmp_path) in refused.value.message
    assert culprit in refused.value.details["nickel_error"]


def test_a_policy_without_the_contract_is_still_checked(tmp_path: Path) -> None:
    path = tmp_path / "loose.ncl"
    path.write_text("""{ rules = [{ name = "x", decision = "auto_approve", extra = 1 }] }""")
    with pytest.raises(InvalidInput, match="policy shape"):
        load_policy(path)


def test_a_valid_custom_policy_loads(tmp_path: Path) -> None:
    body = """{ approval_ttl_s = 60, rules = [{ name = "all", decision = 'auto_approve }] }"""
    policy = load_policy(_policy_file(tmp_path, body))
    assert policy.approval_ttl_s == 60
    assert policy.decide(noop_op()).name == "all"
