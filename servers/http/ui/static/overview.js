// Overview: platform health, each component, counts and the latest failed workflows.

import { call } from "./api.js";
import { badge, h, table, when } from "./dom.js";

async function count(ctx, tool, args, pick) {
  if (!ctx.can(tool)) return null;
  return pick(await call(tool, args));
}

export async function overviewPage(ctx) {
  const [health, servers, pending, failed, recent] = await Promise.all([
    call("platform.health"),
    count(ctx, "server.list", {}, (d) => d.total),
    count(ctx, "ops.list", { status: "pending", limit: 500 }, (d) => d.ops.length),
    count(ctx, "workflow.list", { state: "failed", limit: 5 }, (d) => d.workflows),
    count(ctx, "workflow.list", { limit: 500 }, (d) => d.workflows),
  ]);
  const running = recent ? recent.filter((w) => w.state === "running" || w.state === "pending").length : null;
  const tiles = [
    ["Platform", badge(health.status)],
    ["Servers", servers],
    ["Workflows running", running],
    ["Pending approvals", pending],
  ].filter(([, value]) => value !== null);
  const components = Object.entries(health.components).map(([name, c]) =>
    h("tr", {}, h("th", { scope: "row" }, name), h("td", {}, badge(c.ready ? "ready" : "not-ready")), h("td", {}, c.detail)),
  );
  const failures = (failed || []).map((w) =>
    h(
      "tr",
      {},
      h("td", {}, h("a", { href: `#/workflows/${encodeURIComponent(w.id)}` }, w.name)),
      h("td", {}, w.reason || ""),
      h("td", {}, when(w.finished_at || w.updated_at)),
    ),
  );
  return h(
    "section",
    {},
    h("h1", {}, "Overview"),
    h("ul", { class: "tiles" }, tiles.map(([label, value]) => h("li", { class: "tile" }, h("span", { class: "tile-label" }, label), h("span", { class: "tile-value" }, value)))),
    table("Components", ["Component", "State", "Detail"], components),
    failed ? table("Recent failures", ["Workflow", "Reason", "When"], failures) : null,
  );
}
