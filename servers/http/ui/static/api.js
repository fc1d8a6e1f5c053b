// The public REST API and the `/events` stream, with the credential as a bearer header
// (never a cookie, never a URL). The credential lives in sessionStorage only.

const KEY = "prvng.credential";

export const credential = {
  get: () => sessionStorage.getItem(KEY),
  set: (value) => sessionStorage.setItem(KEY, value),
  clear: () => sessionStorage.removeItem(KEY),
};

/** A refusal or failure in the platform's own words (its error envelope). */
export class ApiError extends Error {
  constructor(error, status, traceId) {
    super(error.message);
    this.code = error.code;
    this.details = error.details || {};
    this.status = status;
    this.traceId = traceId;
  }
}

function headers(accept) {
  return { Authorization: `Bearer ${credential.get() || ""}`, Accept: accept };
}

async function envelope(response) {
  try {
    return await response.json();
  } catch {
    return {
      ok: false,
      error: { code: "internal", message: `the platform answered ${response.status} without an envelope` },
      trace_id: response.headers.get("X-Trace-Id"),
    };
  }
}

// Calls go one at a time: the platform records a stored key's last use on each uncached
// authentication, and concurrent first uses of one key can conflict in the state store.
let queue = Promise.resolve();

async function send(tool, args) {
  const response = await fetch(`/v1/tools/${encodeURIComponent(tool)}`, {
    method: "POST",
    headers: { ...headers("application/json"), "Content-Type": "application/json" },
    body: JSON.stringify(args),
    credentials: "omit",
    cache: "no-store",
  });
  const env = await envelope(response);
  if (!env.ok) throw new ApiError(env.error, response.status, env.trace_id);
  return env.data;
}

/** Invoke one operation: `POST /v1/tools/<name>`; the envelope's data, or an ApiError. */
export function call(tool, args = {}) {
  const result = queue.then(() => send(tool, args));
  queue = result.catch(() => undefined);
  return result;
}

function parseFrame(frame) {
  const message = { id: null, event: null, data: [] };
  for (const line of frame.split(/\r?\n/)) {
    if (line.startsWith(":")) return { comment: line.slice(1).trim() };
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "data") message.data.push(value);
    else if (field === "id") message.id = value;
    else if (field === "event") message.event = value;
  }
  return message;
}

/**
 * Follow `GET /events` (workflow events as SSE) through fetch(), since EventSource cannot
 * send an Authorization header. Calls `onOpen` once subscribed and `onEvent(item)` for each
 * event; reconnects after the last event id it saw until `signal` aborts.
 */
export async function follow(params, { onOpen, onEvent, signal }) {
  let since = null;
  let opened = false;
  while (!signal.aborted) {
    const query = new URLSearchParams(params);
    if (since !== null) query.set("since", since);
    let response;
    try {
      response = await fetch(`/events?${query}`, {
        headers: headers("text/event-stream"),
        credentials: "omit",
        cache: "no-store",
        signal,
      });
    } catch (error) {
      if (signal.aborted) return;
      throw error;
    }
    if (!response.ok) {
      const env = await envelope(response);
      throw new ApiError(env.error, response.status, env.trace_id);
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let match;
        while ((match = /\r?\n\r?\n/.exec(buffer))) {
          const frame = parseFrame(buffer.slice(0, match.index));
          buffer = buffer.slice(match.index + match[0].length);
          if (frame.comment === "connected" && !opened) {
            opened = true;
            onOpen?.();
          } else if (frame.data?.length) {
            if (frame.id !== null) since = frame.id;
            onEvent(JSON.parse(frame.data.join("\n")));
          }
        }
      }
    } catch (error) {
      if (signal.aborted) return;
      throw error;
    }
    if (!signal.aborted) await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}
