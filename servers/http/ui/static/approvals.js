// Pending approvals: what each op would do and who asked; approve or reject it. The
// requester is never offered their own op's approval (four-eyes): only its cancellation.

import { ApiError, call } from "./api.js";
import { announce, errorBox, h, when } from "./dom.js";
import { changesTable } from "./plan.js";

function describe(op) {
  const labels = Object.entries(op.target.labels || {}).map(([k, v]) => `${k}=${v}`).join(", ");
  return h(
    "dl",
    { class: "facts" },
    h("dt", {}, "Operation"), h("dd", { class: "mono" }, op.op_type),
    h("dt", {}, "Target"), h("dd", {}, `${op.target.name} on ${op.target.provider}${labels ? ` (${labels})` : ""}`),
    h("dt", {}, "Requested by"), h("dd", { class: "requester" }, op.requester),
    h("dt", {}, "Requested"), h("dd", {}, when(op.created_at)),
    h("dt", {}, "Policy rule"), h("dd", {}, op.rule),
    h("dt", {}, "Approvals"), h("dd", {}, `${op.approvers.length} of ${op.approvals_needed} (roles: ${op.approver_roles.join(", ")})${op.approvers.length ? `: ${op.approvers.join(", ")}` : ""}`),
    h("dt", {}, "Expires"), h("dd", {}, when(op.expires_at)),
    h("dt", {}, "Trace"), h("dd", {}, h("a", { href: `#/audit?trace_id=${encodeURIComponent(op.trace_id)}` }, op.trace_id)),
  );
}

// The plan an approval signs: its changes, the targets, and the digests the token binds
// (the requester's `approval_required` answer carries the plan that hashes to them).
function plan(op) {
  const targets = op.target.name.split(",");
  return h(
    "div",
    { class: "plan" },
    h("h3", {}, "Plan"),
    op.changes.length
      ? changesTable(`Changes (${op.changes.length})`, op.changes)
      : h("p", { class: "muted" }, "No server or taskserv changes: the workflow's tasks only."),
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, `Targets (${targets.length})`),
      h("dd", { class: "targets" }, targets.map((t) => h("span", { class: "label" }, t))),
      h("dt", {}, "Plan digest"), h("dd", { class: "mono plan-digest" }, op.plan_digest),
      h("dt", {}, "State digest"), h("dd", { class: "mono state-digest" }, op.state_digest || "none (the op records no state)"),
      h("dt", {}, "Params digest"), h("dd", { class: "mono" }, op.params_digest),
    ),
  );
}

function opCard(ctx, op, rerender) {
  const mine = op.requester === ctx.me.id;
  const signed = op.approvers.includes(ctx.me.id);
  const mayApprove = !mine && !signed && op.approver_roles.some((r) => ctx.me.roles.includes(r));
  const problem = h("div", {});
  const headingId = `op-${op.op_id}`;
  const act = (tool, args, done) => async (event) => {
    const button = event.currentTarget;
    button.disabled = true;
    try {
      const result = await call(tool, { op_id: op.op_id, ...args() });
      announce(`${op.op_id} ${result.status}`);
      await rerender(`${done} ${op.op_id}: ${result.status}${result.workflow_id ? `, workflow ${result.workflow_id}` : ""}`);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      problem.replaceChildren(errorBox(error));
      button.disabled = false;
    }
  };
  const reasonId = `reason-${op.op_id}`;
  const reason = h("input", { id: reasonId, name: "reason", autocomplete: "off", maxlength: 1000 });
  const buttons = [];
  if (ctx.can("ops.approve") && mayApprove) {
    buttons.push(h("button", { type: "button", class: "approve", onclick: act("ops.approve", () => ({}), "Approved") }, `Approve ${op.target.name}`));
  }
  if (ctx.can("ops.reject") && !mine) {
    buttons.push(
      h("label", { for: reasonId }, "Reason for rejecting (optional)"), reason,
      h("button", { type: "button", class: "danger", onclick: act("ops.reject", () => ({ reason: reason.value }), "Rejected") }, `Reject ${op.target.name}`),
    );
  }
  if (ctx.can("ops.cancel") && mine) {
    buttons.push(h("button", { type: "button", class: "secondary", onclick: act("ops.cancel", () => ({}), "Cancelled") }, "Cancel my request"));
  }
  const note = mine ? h("p", { class: "muted" }, "You asked for this: another person must approve it (four-eyes).") : signed ? h("p", { class: "muted" }, "You approved this already.") : null;
  return h(
    "article",
    { class: "card op", "aria-labelledby": headingId, dataset: { op: op.op_id } },
    h("h2", { id: headingId }, `${op.op_type} on ${op.target.name}`),
    describe(op),
    plan(op),
    note,
    problem,
    buttons.length ? h("div", { class: "actions" }, buttons) : null,
  );
}

export async function approvalsPage(ctx, message = "") {
  const page = await call("ops.list", { status: "pending", limit: 100 });
  const ops = ctx.can("ops.get") ? await Promise.all(page.ops.map((o) => call("ops.get", { op_id: o.op_id }))) : [];
  const section = h(
    "section",
    {},
    h("h1", { tabindex: -1 }, "Pending approvals"),
    message ? h("p", { class: "ok" }, message) : null,
    ops.length ? ops.map((op) => opCard(ctx, op, rerender)) : h("p", {}, "Nothing waits for approval."),
  );
  async function rerender(text) {
    const next = await approvalsPage(ctx, text);
    section.replaceWith(next);
    next.querySelector("h1").focus();
  }
  return section;
}
