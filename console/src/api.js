// The console's only way to the server: the same /v1 API as curl, with the
// session's bearer token. The token lives in this tab's sessionStorage
// (gone when the tab closes), never in localStorage or a URL.

const TOKEN_KEY = "citadel.session";

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(t) {
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** An error the API answered: its status, stable code, message, details. */
export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

let onUnauthorized = () => {};
export function whenUnauthorized(f) {
  onUnauthorized = f;
}

function headers(extra) {
  const h = { ...extra };
  const t = token();
  if (t) h.Authorization = `Bearer ${t}`;
  return h;
}

async function failure(res) {
  let body = null;
  try {
    body = await res.json();
  } catch {
    // Not JSON: the status says enough.
  }
  const e = body && body.error ? body.error : body || {};
  if (res.status === 401) onUnauthorized();
  return new ApiError(res.status, e.code || "http_" + res.status, e.message || res.statusText, e.details);
}

/** A JSON request; answers the parsed body (or null for 204). */
export async function call(method, path, body) {
  const init = { method, headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const res = await fetch(path, init);
  if (!res.ok) throw await failure(res);
  if (res.status === 204) return null;
  return res.json();
}

/** A GET that also answers the `X-Next-Cursor` header (paged listings). */
export async function page(path) {
  const res = await fetch(path, { headers: headers({}) });
  if (!res.ok) throw await failure(res);
  return { items: await res.json(), next: res.headers.get("X-Next-Cursor") };
}

export const get = (path) => call("GET", path);
export const post = (path, body) => call("POST", path, body === undefined ? {} : body);
export const put = (path, body) => call("PUT", path, body);
export const del = (path) => call("DELETE", path);

/** `/v1/...` with its query string; undefined and empty values left out. */
export function path(base, query) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `${base}?${s}` : base;
}

export const enc = encodeURIComponent;

/** A script name in a path: one segment, its `/` as %2F. */
export const scriptPath = (name) => enc(name);

/**
 * Follows a run's Server-Sent Events with fetch (an EventSource cannot send
 * the Authorization header). Calls `on(event, data)` per event; answers a
 * function that stops following.
 */
export function follow(runId, on) {
  const ctrl = new AbortController();
  (async () => {
    const res = await fetch(`/v1/runs/${enc(runId)}/events`, { headers: headers({}), signal: ctrl.signal });
    if (!res.ok) {
      on("error", await failure(res));
      return;
    }
    if (res.status === 204) return;
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        let event = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (data.length) {
          let parsed = data.join("\n");
          try {
            parsed = JSON.parse(parsed);
          } catch {
            // A log line that is not JSON stays text.
          }
          on(event, parsed);
        }
      }
    }
  })().catch((e) => {
    if (e.name !== "AbortError") on("error", e);
  });
  return () => ctrl.abort();
}
