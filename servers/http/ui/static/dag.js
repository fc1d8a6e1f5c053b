// The workflow's DAG as SVG: one column per dependency depth, edges from each dependency.
// Each task is a focusable node whose colour is its state (CSS classes, no inline style).

import { svg } from "./dom.js";

const W = 156;
const H = 42;
const GAP_X = 48;
const GAP_Y = 14;
export const MAX_NODES = 300;

function depths(tasks) {
  const byId = new Map(tasks.map((t) => [t.id, t]));
  const depth = new Map();
  const visit = (id) => {
    if (depth.has(id)) return depth.get(id);
    depth.set(id, 0); // a guard; the orchestrator refuses cycles
    let d = 0;
    for (const dep of byId.get(id).depends_on) if (byId.has(dep)) d = Math.max(d, visit(dep) + 1);
    depth.set(id, d);
    return d;
  };
  tasks.forEach((t) => visit(t.id));
  return depth;
}

function short(text, max) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** The graph and a `set(taskId, state)` to recolour one node; `onPick(taskId)` on click/Enter. */
export function dagView(tasks, onPick) {
  const shown = tasks.slice(0, MAX_NODES);
  const depth = depths(shown);
  const columns = [];
  for (const t of shown) (columns[depth.get(t.id)] ||= []).push(t);
  const at = new Map();
  columns.forEach((column, x) => column.forEach((t, y) => at.set(t.id, [x * (W + GAP_X), y * (H + GAP_Y)])));
  const width = Math.max(1, columns.length) * (W + GAP_X) - GAP_X + 2;
  const height = Math.max(...columns.map((c) => c.length), 1) * (H + GAP_Y) - GAP_Y + 2;

  const edges = [];
  for (const t of shown) {
    const [x2, y2] = at.get(t.id);
    for (const dep of t.depends_on) {
      if (!at.has(dep)) continue;
      const [x1, y1] = at.get(dep);
      const [sx, sy, ex, ey] = [x1 + W + 1, y1 + H / 2 + 1, x2 + 1, y2 + H / 2 + 1];
      const mid = (sx + ex) / 2;
      edges.push(svg("path", { class: "edge", d: `M${sx},${sy} C${mid},${sy} ${mid},${ey} ${ex},${ey}` }));
    }
  }
  const nodes = new Map();
  const label = (t, state) => `task ${t.id} (${t.action}): ${state}`;
  for (const t of shown) {
    const [x, y] = at.get(t.id);
    const stateText = svg("text", { x: 10, y: 33, class: "node-state" }, t.state);
    const node = svg(
      "g",
      {
        class: `node state-${t.state}`,
        transform: `translate(${x + 1},${y + 1})`,
        tabindex: 0,
        role: "button",
        "aria-label": label(t, t.state),
        dataset: { task: t.id, state: t.state },
        onclick: () => onPick(t.id),
        onkeydown: (event) => {
          if (event.key === "Enter" || event.key === " ") {
            event.preventDefault();
            onPick(t.id);
          }
        },
      },
      svg("title", {}, label(t, t.state)),
      svg("rect", { width: W, height: H, rx: 6 }),
      svg("text", { x: 10, y: 17, class: "node-id" }, short(t.id, 20)),
      stateText,
    );
    nodes.set(t.id, { node, stateText, task: t });
  }
  const graph = svg(
    "svg",
    { class: "dag", viewBox: `0 0 ${width} ${height}`, width, height, role: "group", "aria-label": "Task graph" },
    svg("g", { class: "edges" }, edges),
    svg("g", { class: "nodes" }, [...nodes.values()].map((n) => n.node)),
  );
  const set = (taskId, state) => {
    const entry = nodes.get(taskId);
    if (!entry) return;
    entry.node.setAttribute("class", `node state-${state}`);
    entry.node.dataset.state = state;
    entry.node.setAttribute("aria-label", label(entry.task, state));
    entry.node.querySelector("title").textContent = label(entry.task, state);
    entry.stateText.textContent = state;
  };
  return { graph, set, truncated: tasks.length > shown.length };
}
