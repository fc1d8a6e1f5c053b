// A tiny element builder: text is always set as text (never parsed as HTML).

const SVG_NS = "http://www.w3.org/2000/svg";

function build(element, attrs, children) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

export function svg(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

/** Announce a change to screen readers (the polite live region). */
export function announce(text) {
  const region = document.getElementById("status");
  region.textContent = "";
  region.textContent = text;
}

/** The platform's error message, shown where the action was (role=alert). */
export function errorBox(error) {
  const trace = error.traceId ? h("span", { class: "muted" }, ` (trace ${error.traceId})`) : null;
  return h("p", { class: "error", role: "alert" }, h("strong", {}, `${error.code || "error"}: `), error.message, trace);
}

export function badge(state) {
  return h("span", { class: `badge state-${state}` }, state);
}

/** A captioned table in a box that scrolls sideways on a narrow screen. */
export function table(caption, columns, rows) {
  const grid = h(
    "table",
    {},
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: columns.length }, "None."))),
  );
  return h("div", { class: "scroll" }, grid);
}

export function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return h("time", { datetime: iso }, date.toLocaleString());
}
