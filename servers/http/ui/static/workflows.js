// Workflows: the list (paged), and one workflow's DAG, tasks and logs, followed live
// through `/events`; cancel, retry and rollback where the principal may call them.

import { ApiError, call, follow } from "./api.js";
import { announce, badge, errorBox, h, table, when } from "./dom.js";
import { dagView } from "./dag.js";

const STATES = ["", "pending", "running", "succeeded", "failed", "cancelled", "rolling_back", "rolled_back"];
const LOG_PAGE = 100;
// A state never moves back unless the workflow is retried (then the page reloads).
const RANK = { pending: 0, ready: 1, running: 2, succeeded: 3, failed: 3, skipped: 3, cancelled: 3, compensated: 4 };

export async function workflowsPage(ctx) {
  const state = ctx.params.get("state") || "";
  const cursor = ctx.params.get("cursor");
  const args = { limit: 25, ...(state && { state }), ...(cursor && { cursor }) };
  const page = await call("workflow.list", args);
  const select = h(
    "select",
    { id: "wf-state-filter", name: "state" },
    STATES.map((s) => h("option", { value: s, selected: s === state }, s || "any state")),
  );
  const filter = h("form", { class: "inline" }, h("label", { for: "wf-state-filter" }, "State"), select, h("button", { type: "submit" }, "Filter"));
  filter.addEventListener("submit", (event) => {
    event.preventDefault();
    ctx.go(`#/workflows${select.value ? `?state=${encodeURIComponent(select.value)}` : ""}`);
  });
  const rows = page.workflows.map((w) =>
    h(
      "tr",
      {},
      h("th", { scope: "row" }, h("a", { href: `#/workflows/${encodeURIComponent(w.id)}` }, w.name)),
      h("td", {}, badge(w.state)),
      h("td", {}, `${Object.entries(w.task_counts).map(([k, v]) => `${v} ${k}`).join(", ")} of ${w.tasks_total}`),
      h("td", {}, when(w.created_at)),
      h("td", { class: "mono" }, w.id),
    ),
  );
  const next = page.next_cursor
    ? h("a", { class: "button secondary", href: `#/workflows?${new URLSearchParams({ ...(state && { state }), cursor: page.next_cursor })}` }, "Older workflows")
    : null;
  return h(
    "section",
    {},
    h("h1", {}, "Workflows"),
    filter,
    table("Workflows, newest first", ["Name", "State", "Tasks", "Created", "Id"], rows),
    next,
  );
}

function logsPanel(workflowId) {
  const heading = h("h2", { id: "logs-heading", tabindex: -1 }, "Task logs");
  const body = h("pre", { class: "logs", "aria-labelledby": "logs-heading" }, "Choose a task to see its log.");
  const pager = h("div", { class: "pager" });
  const problem = h("div", {});
  let current = null;
  const load = async (taskId, offset) => {
    current = { taskId, offset };
    try {
      const logs = await call("task.logs", { workflow_id: workflowId, task_id: taskId, offset, limit: LOG_PAGE });
      heading.textContent = `Log of task ${taskId} (lines ${logs.offset + 1}–${logs.offset + logs.lines.length})`;
      body.replaceChildren(...logs.lines.map((l) => h("span", { class: `log-${l.stream}` }, `${l.text}\n`)));
      if (!logs.lines.length) body.textContent = "(no output yet)";
      if (logs.truncated) body.prepend(h("span", { class: "log-info" }, `(${logs.dropped_lines} older lines were dropped)\n`));
      pager.replaceChildren(
        h("button", { type: "button", class: "secondary", onclick: () => load(taskId, offset) }, "Reload log"),
        offset > 0 ? h("button", { type: "button", class: "secondary", onclick: () => load(taskId, Math.max(0, offset - LOG_PAGE)) }, "Previous lines") : "",
        logs.next_offset !== null ? h("button", { type: "button", class: "secondary", onclick: () => load(taskId, logs.next_offset) }, "Next lines") : "",
      );
      problem.replaceChildren();
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      problem.replaceChildren(errorBox(error));
    }
  };
  const element = h("section", { class: "card", "aria-labelledby": "logs-heading" }, heading, problem, body, pager);
  return { element, load, reload: (taskId) => current?.taskId === taskId && load(taskId, current.offset), heading };
}

export async function workflowPage(ctx, id) {
  const buffered = [];
  let apply = (event) => buffered.push(event);
  let streamProblem = null;
  if (ctx.can("workflow.events")) {
    let opened;
    const open = new Promise((resolve) => (opened = resolve));
    follow({ workflow_id: id }, { onOpen: opened, onEvent: (e) => apply(e), signal: ctx.signal }).catch((error) => {
      streamProblem = error;
      opened();
    });
    await open; // subscribed before the snapshot, so no change falls between the two
  }
  const [workflow, list] = await Promise.all([call("workflow.get", { id }), call("task.list", { workflow_id: id, limit: 1000 })]);
  const tasks = new Map(list.tasks.map((t) => [t.id, t]));
  const logs = logsPanel(id);
  const pick = (taskId) => {
    logs.load(taskId, 0);
    logs.heading.focus();
  };
  const dag = dagView(list.tasks, pick);
  const stateBadge = h("span", { id: "wf-state" }, badge(workflow.state));
  const reason = h("p", { id: "wf-reason", class: "muted" }, workflow.reason || "");
  const problem = h("div", {});
  const rowsById = new Map();
  const row = (t) => {
    const tr = h(
      "tr",
      { dataset: { task: t.id } },
      h("th", { scope: "row" }, t.id),
      h("td", {}, t.action),
      h("td", { class: "task-state" }, badge(t.state)),
      h("td", {}, `${t.attempts}/${t.max_attempts}`),
      h("td", { class: "task-error" }, t.error || ""),
      h("td", {}, h("button", { type: "button", class: "secondary", onclick: () => pick(t.id) }, `Logs of ${t.id}`)),
    );
    rowsById.set(t.id, tr);
    return tr;
  };
  const taskTable = table("Tasks", ["Task", "Action", "State", "Attempts", "Error", ""], list.tasks.map(row));

  const control = (tool, label, states) => {
    if (!ctx.can(tool)) return null;
    const button = h("button", { type: "button", class: tool === "workflow.cancel" ? "danger" : "secondary", dataset: { states: states.join(" ") } }, label);
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        const after = await call(tool, { id, wait: false });
        announce(`${label}: ${after.state}`);
        if (tool === "workflow.retry") return ctx.go(`#/workflows/${encodeURIComponent(id)}?retried=${Date.now()}`);
        setState(after.state);
        problem.replaceChildren();
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        problem.replaceChildren(errorBox(error));
      } finally {
        button.disabled = false;
      }
    });
    return button;
  };
  const controls = [
    control("workflow.cancel", "Cancel workflow", ["pending", "running"]),
    control("workflow.retry", "Retry failed tasks", ["failed", "cancelled", "rolled_back"]),
    control("workflow.rollback", "Roll back", ["failed", "cancelled"]),
  ].filter(Boolean);
  const setState = (state) => {
    workflow.state = state;
    stateBadge.replaceChildren(badge(state));
    for (const button of controls) button.hidden = !button.dataset.states.split(" ").includes(state);
  };
  setState(workflow.state);

  const setTask = (taskId, state) => {
    const task = tasks.get(taskId);
    if (!task || (RANK[state] ?? 0) < (RANK[task.state] ?? 0)) return;
    task.state = state;
    dag.set(taskId, state);
    rowsById.get(taskId)?.querySelector(".task-state").replaceChildren(badge(state));
  };
  const refresh = async () => {
    const [after, again] = await Promise.all([call("workflow.get", { id }), call("task.list", { workflow_id: id, limit: 1000 })]);
    for (const t of again.tasks) {
      setTask(t.id, t.state);
      rowsById.get(t.id)?.querySelector(".task-error").replaceChildren(t.error || "");
    }
    reason.textContent = after.reason || "";
    setState(after.state);
    const failed = again.tasks.find((t) => t.state === "failed");
    if (failed) logs.load(failed.id, 0);
  };
  apply = (event) => {
    if (event.workflow_id !== id) return;
    if (event.kind === "task" && event.task_id) {
      setTask(event.task_id, event.state);
      if (event.final) logs.reload(event.task_id);
    } else if (event.kind === "workflow") {
      setState(event.state);
      announce(`workflow ${event.state}`);
      if (event.final) refresh().catch((error) => problem.replaceChildren(errorBox(error)));
    }
  };
  buffered.splice(0).forEach(apply);

  const firstFailed = list.tasks.find((t) => t.state === "failed");
  if (firstFailed) logs.load(firstFailed.id, 0);
  return h(
    "section",
    {},
    h("p", {}, h("a", { href: "#/workflows" }, "← All workflows")),
    h("h1", {}, `Workflow ${workflow.name}`),
    h("p", {}, stateBadge, " ", h("span", { class: "mono" }, workflow.id), " · created ", when(workflow.created_at)),
    reason,
    streamProblem ? errorBox(streamProblem) : h("p", { class: "muted" }, ctx.can("workflow.events") ? "Live: task colours follow the workflow's events." : ""),
    problem,
    controls.length ? h("div", { class: "actions" }, controls) : null,
    h("div", { class: "scroll dag-box" }, dag.graph),
    dag.truncated ? h("p", { class: "muted" }, "The graph shows the first 300 tasks; the table lists them all.") : null,
    taskTable,
    logs.element,
  );
}
