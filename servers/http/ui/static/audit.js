// The audit log: filters (time, principal, tool, outcome, trace id) kept in the page's
// hash, pages by cursor, and each entry's trace id linking to every record of that trace.

import { call } from "./api.js";
import { h, table, when } from "./dom.js";

const FIELDS = [
  ["principal", "Principal"],
  ["tool", "Tool"],
  ["outcome", "Outcome"],
  ["trace_id", "Trace id"],
];

function localInput(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

export async function auditPage(ctx) {
  const params = ctx.params;
  const args = { limit: 50 };
  for (const key of ["since", "until", "cursor", ...FIELDS.map(([k]) => k)]) if (params.get(key)) args[key] = params.get(key);
  const page = await call("audit.query", args);

  const inputs = {};
  const field = (name, label, type = "text", value = params.get(name) || "") => {
    inputs[name] = h("input", { id: `audit-${name}`, name, type, value, autocomplete: "off" });
    return h("div", { class: "field" }, h("label", { for: `audit-${name}` }, label), inputs[name]);
  };
  const form = h(
    "form",
    { class: "filters", "aria-label": "Audit filters" },
    field("since", "From (local time)", "datetime-local", localInput(params.get("since"))),
    field("until", "Until (local time)", "datetime-local", localInput(params.get("until"))),
    FIELDS.map(([name, label]) => field(name, label)),
    h("div", { class: "field buttons" }, h("button", { type: "submit" }, "Filter"), h("a", { class: "button secondary", href: "#/audit" }, "Clear")),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const query = new URLSearchParams();
    for (const [name, input] of Object.entries(inputs)) {
      if (!input.value.trim()) continue;
      query.set(name, input.type === "datetime-local" ? new Date(input.value).toISOString() : input.value.trim());
    }
    ctx.go(`#/audit?${query}`);
  });
  const rows = page.records.map((r) =>
    h(
      "tr",
      { class: `outcome-${r.outcome}` },
      h("td", {}, when(r.timestamp)),
      h("td", {}, r.principal),
      h("td", { class: "mono" }, r.tool),
      h("td", {}, r.outcome),
      h("td", {}, r.tier || ""),
      h("td", {}, r.target || ""),
      h("td", { class: "mono" }, h("a", { href: `#/audit?trace_id=${encodeURIComponent(r.trace_id)}`, "aria-label": `All records of trace ${r.trace_id}` }, r.trace_id)),
    ),
  );
  const next = new URLSearchParams(params);
  next.set("cursor", page.next_cursor || "");
  return h(
    "section",
    {},
    h("h1", {}, params.get("trace_id") ? `Audit log of trace ${params.get("trace_id")}` : "Audit log"),
    form,
    table(`${page.records.length} records`, ["Time", "Principal", "Tool", "Outcome", "Tier", "Target", "Trace"], rows),
    page.next_cursor ? h("a", { class: "button secondary", href: `#/audit?${next}` }, "Older records") : null,
  );
}
