// Users (admins) and API keys (one's own; an admin may pick a user). A new key is shown
// once, on the page only: the platform keeps its hash.

import { ApiError, call } from "./api.js";
import { announce, badge, errorBox, h, table, when } from "./dom.js";

const ROLES = ["viewer", "operator", "approver", "admin"];

function guarded(problem, action) {
  return async (event) => {
    event.preventDefault();
    try {
      await action();
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      problem.replaceChildren(errorBox(error));
    }
  };
}

async function reload(page, ctx, message) {
  const main = document.getElementById("main");
  main.replaceChildren(await page(ctx, message));
  main.querySelector("h1").focus();
}

export async function usersPage(ctx, message = "") {
  const { users } = await call("user.list");
  const problem = h("div", {});
  const name = h("input", { id: "user-name", name: "name", required: true, autocomplete: "off", pattern: "[a-z][a-z0-9_.\\-]*" });
  const roles = ROLES.map((role) => h("label", { class: "check" }, h("input", { type: "checkbox", name: "roles", value: role }), ` ${role}`));
  const form = h(
    "form",
    { class: "card" },
    h("h2", {}, "New user"),
    h("label", { for: "user-name" }, "Name"),
    name,
    h("fieldset", {}, h("legend", {}, "Roles"), roles),
    h("button", { type: "submit" }, "Create user"),
  );
  form.addEventListener(
    "submit",
    guarded(problem, async () => {
      const chosen = [...form.querySelectorAll("input[name=roles]:checked")].map((i) => i.value);
      const user = await call("user.create", { name: name.value.trim(), roles: chosen });
      announce(`user ${user.name} created`);
      await reload(usersPage, ctx, `User ${user.name} created.`);
    }),
  );
  const rows = users.map((u) =>
    h(
      "tr",
      {},
      h("th", { scope: "row" }, u.name),
      h("td", {}, u.roles.join(", ")),
      h("td", {}, badge(u.disabled ? "disabled" : "active")),
      h("td", {}, when(u.created_at), ` by ${u.created_by}`),
      h(
        "td",
        {},
        ctx.can("apikey.list") ? h("a", { href: `#/keys?user=${encodeURIComponent(u.name)}` }, `Keys of ${u.name}`) : null,
        " ",
        ctx.can("user.disable") && !u.disabled
          ? h("button", { type: "button", class: "danger", onclick: guarded(problem, async () => {
              await call("user.disable", { name: u.name });
              await reload(usersPage, ctx, `User ${u.name} disabled.`);
            }) }, `Disable ${u.name}`)
          : null,
      ),
    ),
  );
  return h(
    "section",
    {},
    h("h1", { tabindex: -1 }, "Users"),
    message ? h("p", { class: "ok" }, message) : null,
    problem,
    table("Users", ["Name", "Roles", "State", "Created", ""], rows),
    ctx.can("user.create") ? form : null,
  );
}

export async function keysPage(ctx, message = "") {
  const user = ctx.params.get("user") || ctx.me.id;
  const { keys } = await call("apikey.list", user === ctx.me.id ? {} : { user });
  const problem = h("div", {});
  const shown = h("div", {});
  const label = h("input", { id: "key-name", name: "name", maxlength: 64, autocomplete: "off" });
  const form = h(
    "form",
    { class: "card" },
    h("h2", {}, `New key for ${user}`),
    h("label", { for: "key-name" }, "What it is for"),
    label,
    h("button", { type: "submit" }, "Create key"),
  );
  form.addEventListener(
    "submit",
    guarded(problem, async () => {
      const created = await call("apikey.create", { name: label.value.trim(), ...(user === ctx.me.id ? {} : { user }) });
      shown.replaceChildren(
        h("p", { class: "ok", role: "status" }, `Key ${created.key_id} created. Copy it now: it is not shown again.`),
        h("label", { for: "new-key" }, "The new key"),
        h("input", { id: "new-key", readonly: true, value: created.key, class: "mono" }),
      );
      shown.querySelector("input").select();
    }),
  );
  const rows = keys.map((k) =>
    h(
      "tr",
      {},
      h("th", { scope: "row", class: "mono" }, k.key_id),
      h("td", {}, k.name),
      h("td", {}, k.scopes.join(", ") || "all its user may"),
      h("td", {}, when(k.created_at)),
      h("td", {}, when(k.last_used_at)),
      h("td", {}, k.revoked_at ? badge("revoked") : when(k.expires_at) || "never"),
      h(
        "td",
        {},
        ctx.can("apikey.revoke") && !k.revoked_at
          ? h("button", { type: "button", class: "danger", onclick: guarded(problem, async () => {
              await call("apikey.revoke", { key_id: k.key_id });
              await reload(keysPage, ctx, `Key ${k.key_id} revoked.`);
            }) }, `Revoke ${k.key_id}`)
          : null,
      ),
    ),
  );
  return h(
    "section",
    {},
    h("h1", { tabindex: -1 }, `API keys of ${user}`),
    message ? h("p", { class: "ok" }, message) : null,
    problem,
    table("Keys", ["Id", "Name", "Scopes", "Created", "Last used", "Expires", ""], rows),
    ctx.can("apikey.create") ? form : null,
    shown,
  );
}
