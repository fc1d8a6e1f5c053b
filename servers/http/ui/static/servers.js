// Servers with their taskservs and health; creating the workspace's servers starts a
// workflow (or asks for approval), which the workflow page then follows live.

import { ApiError, call } from "./api.js";
import { announce, badge, errorBox, h, table, when } from "./dom.js";

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

export async function serversPage(ctx) {
  const inventory = await call("server.list");
  const problem = h("div", {});
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
      h("td", {}, when(s.checked_at)),
    ),
  );
  return h(
    "section",
    {},
    h("h1", {}, "Servers"),
    problem,
    ctx.can("server.create") ? createForm(ctx, problem) : null,
    ctx.can("server.refresh")
      ? h("div", { class: "actions" }, h("button", { type: "button", class: "secondary", onclick: refresh }, "Check health now"))
      : null,
    table(`Servers (${inventory.total})`, ["Name", "Provider", "Status", "Address", "Labels", "Taskservs (health)", "Checked"], rows),
  );
}

function main() {
  return document.getElementById("main");
}
