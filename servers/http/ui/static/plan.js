// A plan's changes as a table (what an op or the workspace config would create, change or
// remove, each with what differs), shared by the approvals and the servers pages.

import { badge, h, table } from "./dom.js";

function value(v) {
  const text = typeof v === "string" ? v : JSON.stringify(v);
  return text.length > 80 ? `${text.slice(0, 79)}…` : text;
}

/** What differs between a change's `before` and `after`, in a line a person reads. */
export function difference(change) {
  const { before, after } = change;
  if (change.action === "no-op") return "as it is";
  if (!before) return Object.entries(after || {}).map(([k, v]) => `${k}=${value(v)}`).join(", ") || "new";
  if (!after) return "removed";
  const changed = Object.keys(after).filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]));
  return changed.map((k) => `${k}: ${value(before[k] ?? null)} → ${value(after[k])}`).join("; ") || "as it is";
}

/** The changes as a captioned table: action, kind, name, and what differs. */
export function changesTable(caption, changes) {
  const rows = changes.map((c) =>
    h(
      "tr",
      { class: "change", dataset: { action: c.action } },
      h("td", {}, badge(c.action)),
      h("td", {}, c.kind),
      h("th", { scope: "row", class: "mono" }, c.name),
      h("td", { class: "mono" }, difference(c)),
    ),
  );
  return table(caption, ["Action", "Kind", "Name", "Before → after"], rows);
}
