// The dashboard shell: sign-in, the navigation a principal may use, and the hash router.
// What a principal may not call is not offered: pages and buttons are driven by the
// operations `tools.list` lists for that principal.

import { ApiError, call, credential } from "./api.js";
import { announce, errorBox, h } from "./dom.js";
import { approvalsPage } from "./approvals.js";
import { auditPage } from "./audit.js";
import { keysPage, usersPage } from "./access.js";
import { overviewPage } from "./overview.js";
import { serversPage } from "./servers.js";
import { workflowPage, workflowsPage } from "./workflows.js";

const PAGES = [
  { path: "overview", title: "Overview", needs: "platform.health", render: overviewPage },
  { path: "servers", title: "Servers", needs: "server.list", render: serversPage },
  { path: "workflows", title: "Workflows", needs: "workflow.list", render: workflowsPage },
  { path: "approvals", title: "Approvals", needs: "ops.list", render: approvalsPage },
  { path: "audit", title: "Audit log", needs: "audit.query", render: auditPage },
  { path: "users", title: "Users", needs: "user.list", render: usersPage },
  { path: "keys", title: "API keys", needs: "apikey.list", render: keysPage },
];

const main = document.getElementById("main");
let session = null; // { me, tools: Set, can(name) }
let leave = new AbortController(); // aborted when the page changes (ends its streams)

function route() {
  const [path, query = ""] = location.hash.replace(/^#\/?/, "").split("?");
  const [page, ...rest] = path.split("/").map(decodeURIComponent);
  return { page: page || "overview", rest, params: new URLSearchParams(query) };
}

function renderNav(current) {
  const nav = document.getElementById("nav");
  nav.replaceChildren(
    h(
      "ul",
      {},
      PAGES.filter((p) => session.can(p.needs)).map((p) =>
        h("li", {}, h("a", { href: `#/${p.path}`, "aria-current": p.path === current ? "page" : null }, p.title)),
      ),
    ),
  );
  document.getElementById("who").textContent = `${session.me.id} (${session.me.roles.join(", ") || "no role"})`;
  document.getElementById("signout").hidden = false;
}

let turn = 0; // a page rendered after a newer navigation began is dropped

async function show() {
  const mine = ++turn;
  leave.abort();
  leave = new AbortController();
  if (!session) return signInPage();
  const { page, rest, params } = route();
  renderNav(page);
  const spec = PAGES.find((p) => p.path === page);
  const ctx = { ...session, signal: leave.signal, params, rest, go: (hash) => (location.hash = hash) };
  let view;
  if (!spec || !session.can(spec.needs)) {
    view = h("section", {}, h("h1", {}, "Not available"), h("p", {}, "This page is not offered to you: your roles do not allow its operations."));
  } else if (page === "workflows" && rest[0]) {
    view = await safely(() => workflowPage(ctx, rest[0]));
  } else {
    view = await safely(() => spec.render(ctx));
  }
  if (mine !== turn) return;
  main.replaceChildren(view);
  const heading = main.querySelector("h1");
  document.title = `${heading ? heading.textContent : "prvng"} · prvng control center`;
  main.focus({ preventScroll: true });
}

async function safely(render) {
  try {
    return await render();
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.code === "unauthenticated") {
      signOut();
      return h("section", {}, errorBox(error));
    }
    return h("section", {}, h("h1", {}, "Something was refused"), errorBox(error));
  }
}

async function openSession() {
  const [me, listing] = await Promise.all([call("identity.whoami"), call("tools.list")]);
  const tools = new Set(listing.tools.map((t) => t.name));
  return { me, tools, can: (name) => tools.has(name) };
}

function signInPage() {
  document.getElementById("nav").replaceChildren();
  document.getElementById("who").textContent = "";
  document.getElementById("signout").hidden = true;
  const input = h("input", { id: "credential", name: "credential", type: "password", autocomplete: "off", required: true, spellcheck: "false" });
  const problem = h("div", { id: "signin-problem" });
  const form = h(
    "form",
    { class: "card signin", "aria-describedby": "signin-help" },
    h("h1", {}, "Sign in"),
    h("p", { id: "signin-help" }, "Paste an API key (prvng_…) or a session token. It is kept in this tab's session storage only and sent as a bearer header."),
    h("label", { for: "credential" }, "API key or session token"),
    input,
    h("button", { type: "submit" }, "Sign in"),
    problem,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    credential.set(input.value.trim());
    try {
      session = await openSession();
      announce(`Signed in as ${session.me.id}`);
      if (!location.hash || location.hash === "#/signin") location.hash = "#/overview";
      else await show();
    } catch (error) {
      credential.clear();
      if (!(error instanceof ApiError)) throw error;
      problem.replaceChildren(errorBox(error));
      input.focus();
    }
  });
  main.replaceChildren(h("section", {}, form));
  input.focus();
}

function signOut() {
  credential.clear();
  session = null;
  leave.abort();
  signInPage();
}

document.getElementById("signout").addEventListener("click", async () => {
  if (session?.me.kind === "session" && session.can("session.logout")) {
    await call("session.logout").catch(() => undefined); // a token ends with its session
  }
  signOut();
  announce("Signed out");
});
window.addEventListener("hashchange", () => show());

async function start() {
  if (credential.get()) {
    try {
      session = await openSession();
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      credential.clear();
    }
  }
  await show();
}

start();
