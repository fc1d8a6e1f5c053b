// Servers with their taskservs, health and drift; creating the workspace's servers starts
// a workflow (or asks for approval), which the workflow page then follows live.
//
// Drift is `settings.plan` of the workspace file `server.create` reads by default: what
// creating the servers would change now, and installed taskservs the config no longer
// lists. The plan is computed by the platform; this page only groups it by server.

import { ApiError, call } from "./api.js";
import { announce, badge, errorBox, h, table, when } from "./dom.js";
import { changesTable, difference } from "./plan.js";

const WORKSPACE = "workspace.ncl";

function driftOf(plan, server) {
  const mine = (name) => name === server || name.startsWith(`${server}/`);
  const configured = plan.changes.some((c) => c.kind === "server" && c.name === server);
  const changes = plan.changes.filter((c) => mine(c.name) && c.action !== "no-op");
  return { configured, changes, extra: plan.drift.filter(mine) };
}

function driftCell(plan, server) {
  const { configured, changes, extra } = driftOf(plan, server);
  if (!configured) return h("td", { class: "drift" }, badge("drift"), ` not in ${WORKSPACE}`);
  if (!changes.length && !extra.length) return h("td", { class: "drift" }, badge("in-sync"), " no drift");
  return h(
    "td",
    { class: "drift" },
    badge("drift"),
    h(
      "ul",
      {},
      extra.map((name) => h("li", {}, `${name.split("/")[1]} installed, not in ${WORKSPACE}`)),
      changes.map((c) => h("li", {}, `${c.action} ${c.kind} ${c.name}: ${difference(c)}`)),
    ),
  );
}

function labels(map) {
  return Object.entries(map || {}).map(([k, v]) => h("span", { class: "label" }, `${k}=${v}`));
}

function createForm(ctx, problem) {
  const names = h("input", { id: "create-names", name: "names", placeholder: "web-1, kv-1", autocomplete: "off" });
  const form = h(
    "form",
    { class: "inline" },
    h("label", { for: "create-names" }, "Create servers of the workspace (names, comma-separated; empty: all)"),
    names,
    h("button", { type: "submit" }, "Create"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const list = names.value.split(",").map((n) => n.trim()).filter(Boolean);
    try {
      const workflow = await call("server.create", list.length ? { names: list } : {});
      announce(`workflow ${workflow.id} started`);
      ctx.go(`#/workflows/${encodeURIComponent(workflow.id)}`);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      problem.replaceChildren(errorBox(error));
      if (error.code === "approval_required") problem.append(h("p", {}, h("a", { href: "#/approvals" }, "See pending approvals")));
    }
  });
  return form;
}

async function workspacePlan(ctx, problem) {
  if (!ctx.can("settings.plan")) return null;
  try {
    return await call("settings.plan", { path: WORKSPACE });
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    problem.replaceChildren(errorBox(error));
    return null;
  }
}

export async function serversPage(ctx) {
  const inventory = await call("server.list");
  const problem = h("div", {});
  const plan = await workspacePlan(ctx, problem);
  const known = new Set(inventory.servers.map((s) => s.name));
  const missing = plan ? plan.changes.filter((c) => c.kind === "server" && !known.has(c.name)).map((c) => c.name) : [];
  const refresh = async () => {
    try {
      await call("server.refresh", {});
      announce("health checked");
      main().replaceChildren(await serversPage(ctx));
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      problem.replaceChildren(errorBox(error));
    }
  };
  const rows = inventory.servers.map((s) =>
    h(
      "tr",
      {},
      h("th", { scope: "row" }, s.name),
      h("td", {}, s.provider),
      h("td", {}, badge(s.status)),
      h("td", {}, s.address || ""),
      h("td", {}, labels(s.labels)),
      h(
        "td",
        {},
        s.taskservs.map((t) => h("span", { class: "label" }, `${t.name} `, badge(t.status), t.detail ? ` ${t.detail}` : "")),
      ),
      plan ? driftCell(plan, s.name) : null,
      h("td", {}, when(s.checked_at)),
    ),
  );
  const columns = ["Name", "Provider", "Status", "Address", "Labels", "Taskservs (health)"];
  return h(
    "section",
    {},
    h("h1", {}, "Servers"),
    problem,
    ctx.can("server.create") ? createForm(ctx, problem) : null,
    ctx.can("server.refresh")
      ? h("div", { class: "actions" }, h("button", { type: "button", class: "secondary", onclick: refresh }, "Check health now"))
      : null,
    table(`Servers (${inventory.total})`, [...columns, ...(plan ? [`Drift (against ${WORKSPACE})`] : []), "Checked"], rows),
    missing.length ? h("p", { class: "not-created" }, `In ${WORKSPACE}, not created yet: ${missing.join(", ")}`) : null,
    plan ? h("details", {}, h("summary", {}, `What creating the servers of ${WORKSPACE} would change`), changesTable(`Plan ${plan.digest}`, plan.changes)) : null,
  );
}

function main() {
  return document.getElementById("main");
}
