"""The control-center dashboard as an operator uses it, in headless Chromium against a
real platform: sign in, watch workflows live, approve as a second person, read the audit
log; and what a principal may not do is not offered."""

from __future__ import annotations

import re
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.ui.conftest import Console, Platform, shot

pytestmark = pytest.mark.browser

CSP_PARTS = (
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "frame-ancestors 'none'",
    "object-src 'none'",
)


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def sign_in(page: Any, platform: Platform, key: str, hash_: str = "") -> None:
    page.goto(f"{platform.url}/ui/{hash_}")
    page.get_by_label("API key or session token").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#who")).not_to_be_empty()


def submit(platform: Platform, spec: dict[str, Any], key: str | None = None) -> str:
    workflow_id: str = platform.data("workflow.submit", spec, key)["id"]
    return workflow_id


def node(page: Any, task: str) -> Any:
    return page.locator(f"svg.dag g.node[data-task='{task}']")


def pending_op(platform: Platform, requester: str) -> str:
    """A workflow on an env=prod target: the keeper holds it for a second person."""
    spec = {"name": f"prod-{uuid.uuid4().hex[:6]}", "labels": {"env": "prod"}}
    spec["tasks"] = [{"id": "only", "action": "noop"}]
    asked = platform.call("workflow.submit", spec, requester)
    assert asked.status_code == 202, asked.text
    op_id: str = asked.json()["error"]["details"]["op_id"]
    return op_id


def pending_server(platform: Platform, requester: str, server: str) -> str:
    """A workflow creating a prod server: held for a second person, with a plan's change."""
    create = {"name": server, "provider": "local", "labels": {"env": "prod"}}
    spec = {"name": f"make-{server}", "labels": {"env": "prod"}}
    spec["tasks"] = [{"id": "create", "action": "server.create", "params": create}]
    asked = platform.call("workflow.submit", spec, requester)
    assert asked.status_code == 202, asked.text
    op_id: str = asked.json()["error"]["details"]["op_id"]
    return op_id


def test_sign_in_keeps_the_key_out_of_urls_and_every_page_has_a_strict_csp(
    platform: Platform, new_page: Any, console: Console
) -> None:
    page = new_page()
    response = page.goto(f"{platform.url}/ui/")
    headers = response.headers
    for part in CSP_PARTS:
        assert part in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    shot(page, "sign-in")

    console.expect("401")  # the wrong key's refusal, which the page shows
    page.get_by_label("API key or session token").fill("prvng_000000000000_wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not valid")

    page.get_by_label("API key or session token").fill(platform.admin_key)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.locator("table", has_text="Components")).to_contain_text("orchestrator")
    expect(page.locator(".tile", has_text="Platform")).to_contain_text("ok")
    assert page.evaluate("sessionStorage.getItem('prvng.credential')") == platform.admin_key
    assert page.evaluate("document.cookie") == ""
    shot(page, "overview")
    for link, name in (("Servers", "servers"), ("Workflows", "workflows"), ("Users", "users")):
        page.get_by_role("link", name=link, exact=True).click()
        expect(page.get_by_role("heading", level=1)).to_contain_text(link)
        assert platform.admin_key not in page.url
        shot(page, name)
    for path in ("/ui/app.js", "/ui/style.css"):
        assert (
            "script-src 'self'"
            in page.request.get(platform.url + path).headers["content-security-policy"]
        )


def test_a_workflow_goes_green_live(platform: Platform, new_page: Any) -> None:
    # Tasks run as an unprivileged user when the platform is root: a dir they may read.
    shared = Path(tempfile.mkdtemp(prefix="prvng-ui-"))
    shared.chmod(0o755)
    gate = shared / "go"
    wait_for_gate = f"while [ ! -e '{gate}' ]; do sleep 0.05; done; echo gate open"
    workflow_id = submit(
        platform,
        {
            "name": "live-demo",
            "tasks": [
                {"id": "gate", "action": "shell", "params": {"command": wait_for_gate}},
                {"id": "after", "action": "noop", "depends_on": ["gate"]},
            ],
        },
    )
    page = new_page()
    sign_in(page, platform, platform.admin_key, f"#/workflows/{workflow_id}")
    expect(node(page, "gate")).to_have_class(re.compile(r"\bstate-running\b"))
    expect(node(page, "after")).to_have_attribute("data-state", "pending")
    page.evaluate("window.notReloaded = true")
    shot(page, "workflow-running")

    gate.touch()
    expect(node(page, "gate")).to_have_class(re.compile(r"\bstate-succeeded\b"))
    expect(node(page, "after")).to_have_class(re.compile(r"\bstate-succeeded\b"))
    expect(page.locator("#wf-state")).to_have_text("succeeded")
    assert page.evaluate("window.notReloaded") is True  # the events, not a reload
    shot(page, "workflow-succeeded")
    shutil.rmtree(shared)


def test_a_failing_workflow_shows_its_failed_task_and_log(
    platform: Platform, new_page: Any
) -> None:
    token = uuid.uuid4().hex[:8]
    marker = f"boom-{token}"  # the output; the command line (logged first) spells it apart
    workflow_id = submit(
        platform,
        {
            "name": "failing-demo",
            "on_failure": "stop",
            "tasks": [
                {"id": "prepare", "action": "noop"},
                {
                    "id": "break",
                    "action": "shell",
                    "depends_on": ["prepare"],
                    "params": {"command": f"seq 1 150; printf '%s-%s\\n' boom {token} >&2; exit 3"},
                },
            ],
        },
    )
    page = new_page()
    sign_in(page, platform, platform.admin_key, f"#/workflows/{workflow_id}")
    expect(node(page, "break")).to_have_class(re.compile(r"\bstate-failed\b"))
    expect(page.locator("#wf-state")).to_have_text("failed")
    expect(page.locator("tr[data-task='break'] .task-error")).to_contain_text("status 3")
    logs = page.locator("pre.logs")
    expect(logs).to_contain_text("\n99\n")  # the first page of 100 lines: the command, 1-99
    expect(logs).not_to_contain_text(marker)
    page.get_by_role("button", name="Next lines").click()
    expect(logs).to_contain_text(marker)
    expect(page.locator("#logs-heading")).to_contain_text("(lines 101")
    expect(page.get_by_role("button", name="Retry failed tasks")).to_be_visible()
    expect(page.get_by_role("button", name="Cancel workflow")).to_be_hidden()
    shot(page, "workflow-failed")


def test_a_second_person_approves_and_the_requester_cannot(
    platform: Platform, new_page: Any, console: Console
) -> None:
    ada = platform.user("ada", ["admin"])
    apu = platform.user("apu", ["approver"])
    server = f"db-{uuid.uuid4().hex[:6]}"
    op_id = pending_server(platform, ada, server)
    card = f"article[data-op='{op_id}']"
    op = platform.data("ops.get", {"op_id": op_id}, apu)
    assert "workflow" not in op  # its task params are for the workflow's readers only

    mine = new_page()
    sign_in(mine, platform, ada, "#/approvals")
    expect(mine.locator(card)).to_contain_text("four-eyes")
    expect(mine.locator(card).locator(".requester")).to_have_text("ada")
    expect(mine.locator(card).get_by_role("button", name=re.compile("^Approve"))).to_have_count(0)
    expect(mine.locator(card).get_by_role("button", name="Cancel my request")).to_be_visible()
    shot(mine, "approvals-requester")

    theirs = new_page()
    sign_in(theirs, platform, apu, "#/approvals")
    change = theirs.locator(card).locator("tr.change")  # the plan the approval signs
    expect(change).to_have_count(1)
    cells = ["create", "server", server, 'provider=local, labels={"env":"prod"}']
    expect(change.locator("td, th")).to_have_text(cells)
    expect(theirs.locator(card).locator(".targets")).to_have_text(server)
    expect(theirs.locator(card).locator(".plan-digest")).to_have_text(op["plan_digest"])
    expect(theirs.locator(card).locator(".state-digest")).to_have_text(op["state_digest"])
    assert op["plan_digest"].startswith("sha256:") and op["state_digest"].startswith("sha256:")
    shot(theirs, "approvals-plan")
    theirs.locator(card).get_by_role("button", name=re.compile("^Approve")).click()
    expect(theirs.locator("main p.ok")).to_contain_text("published")
    expect(theirs.locator(card)).to_have_count(0)
    assert platform.data("ops.get", {"op_id": op_id})["approvers"] == ["apu"]
    shot(theirs, "approvals-approved")

    # A refusal is the platform's own message: an op cancelled while the page was open.
    console.expect("409")
    other = pending_op(platform, ada)
    theirs.reload()
    platform.data("ops.cancel", {"op_id": other}, ada)
    theirs.locator(f"article[data-op='{other}']").get_by_role(
        "button", name=re.compile("^Approve")
    ).click()
    expect(theirs.get_by_role("alert")).to_contain_text("conflict")


def test_the_audit_log_filters_and_links_an_entry_to_its_trace(
    platform: Platform, new_page: Any
) -> None:
    olga = platform.user("olga", ["operator"])
    submit(platform, {"name": "audited", "tasks": [{"id": "t", "action": "noop"}]}, olga)
    page = new_page()
    sign_in(page, platform, platform.admin_key, "#/audit")
    page.get_by_label("Principal").fill("olga")
    page.get_by_label("Tool").fill("workflow.submit")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("olga")
    expect(rows.first).to_contain_text("workflow.submit")
    assert "principal=olga" in page.url and "olga" in page.get_by_label("Principal").input_value()
    shot(page, "audit-filtered")

    trace = rows.first.locator("a").inner_text()
    rows.first.locator("a").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Audit log of trace {trace}")
    expect(page.locator("table tbody tr").first).to_contain_text(trace)
    shot(page, "audit-trace")


def test_a_viewer_is_offered_no_admin_page_and_no_control(
    platform: Platform, new_page: Any
) -> None:
    vic = platform.user("vic", ["viewer"])
    workflow_id = submit(platform, {"name": "seen", "tasks": [{"id": "t", "action": "noop"}]})
    pending_op(platform, platform.admin_key)
    page = new_page(viewport={"width": 390, "height": 844})  # a phone
    sign_in(page, platform, vic)
    expect(page.locator("table", has_text="Components")).to_contain_text("orchestrator")
    links = page.locator("#nav a").all_inner_texts()
    allowed = {t["name"] for t in platform.data("tools.list", {}, vic)["tools"]}
    assert "user.list" not in allowed and "Users" not in links
    assert links == ["Overview", "Servers", "Workflows", "Approvals", "Audit log", "API keys"]
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, "viewer-narrow")

    page.goto(f"{platform.url}/ui/#/users")
    expect(page.get_by_role("heading", level=1)).to_have_text("Not available")
    page.goto(f"{platform.url}/ui/#/workflows/{workflow_id}")
    expect(page.locator("#wf-state")).to_have_text("succeeded")
    expect(page.locator("main .actions button")).to_have_count(0)
    page.goto(f"{platform.url}/ui/#/approvals")
    expect(page.locator("article.op").first).to_be_visible()
    expect(page.locator("article.op .plan-digest").first).to_contain_text("sha256:")
    expect(page.locator("article.op button")).to_have_count(0)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, "viewer-approvals-narrow")
    expect(page.get_by_label("Create servers of the workspace")).to_have_count(0)


def test_an_approval_with_the_keyboard_only(platform: Platform, new_page: Any) -> None:
    kim = platform.user("kim", ["approver"])
    requester = platform.user("rob", ["admin"])
    op_id = pending_op(platform, requester)
    page = new_page()
    page.goto(f"{platform.url}/ui/")
    expect(page.get_by_label("API key or session token")).to_be_focused()
    page.keyboard.type(kim)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()

    def tab_to(name: str, limit: int = 60) -> None:
        for _ in range(limit):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.textContent.trim()") == name:
                return
        raise AssertionError(f"{name!r} is not reachable with Tab")

    tab_to("Approvals")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Pending approvals")).to_be_visible()
    target = platform.data("ops.get", {"op_id": op_id})["target"]["name"]
    tab_to(f"Approve {target}")
    shot(page, "approvals-keyboard")
    page.keyboard.press("Enter")
    expect(page.locator("main p.ok")).to_contain_text("published")
    expect(page.get_by_role("heading", name="Pending approvals")).to_be_focused()
    assert platform.data("ops.get", {"op_id": op_id})["approvers"] == ["kim"]


def test_servers_created_from_the_page_are_followed_to_running(
    platform: Platform, new_page: Any
) -> None:
    page = new_page()
    sign_in(page, platform, platform.admin_key, "#/servers")
    page.get_by_label("Create servers of the workspace").fill("kv-1")
    page.get_by_role("button", name="Create", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        re.compile("^Workflow servers-create")
    )
    expect(page.locator("#wf-state")).to_have_text("succeeded")
    page.get_by_role("link", name="Servers", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Servers")
    row = page.locator("tr", has=page.get_by_role("rowheader", name="kv-1", exact=True))
    expect(row).to_contain_text("running")
    expect(row).to_contain_text("kv-store")
    expect(row.locator("td.drift")).to_have_text("in-sync no drift")
    shot(page, "servers-created")


def test_a_server_that_differs_from_the_workspace_shows_its_drift(
    platform: Platform, new_page: Any
) -> None:
    # web-1 as the workspace names it, but with kv-store instead of its static-web.
    kv = {"server": "web-1", "taskserv": "kv-store", "settings": {"max_value_bytes": 65536}}
    create = {"name": "web-1", "provider": "local", "labels": {"env": "dev", "tier": "web"}}
    tasks = [
        {"id": "create", "action": "server.create", "params": create},
        {"id": "kv", "action": "taskserv.install", "params": kv, "depends_on": ["create"]},
    ]
    made = platform.data("workflow.submit", {"name": "off-plan", "tasks": tasks, "wait": True})
    assert made["state"] == "succeeded", made
    page = new_page()
    sign_in(page, platform, platform.admin_key, "#/servers")
    row = page.locator("tr", has=page.get_by_role("rowheader", name="web-1", exact=True))
    drift = row.locator("td.drift")
    expect(drift).to_contain_text("kv-store installed, not in workspace.ncl")
    expect(drift).to_contain_text("create taskserv web-1/static-web: settings=")
    expect(drift.locator(".badge")).to_have_text("drift")
    shot(page, "servers-drift")
