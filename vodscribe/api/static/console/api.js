// The public API, as any client calls it: `Authorization: APIKey <key>`. The key is kept in this
// tab's sessionStorage only (gone when the tab closes or on sign out), never in a URL, never logged.

const KEY = "vodscribe.apiKey";

export const session = {
  get key() { return sessionStorage.getItem(KEY); },
  signIn(key) { sessionStorage.setItem(KEY, key); },
  signOut() { sessionStorage.clear(); },
};

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** The error of an answer in words: Gcore's {error}, a video's {errors: {field: [..]}}, or FastAPI's. */
function describe(status, body) {
  if (body && typeof body === "object") {
    if (typeof body.error === "string") return body.error;
    if (body.errors && typeof body.errors === "object") {
      return Object.entries(body.errors).map(([field, msgs]) => `${field}: ${[].concat(msgs).join(", ")}`).join("; ");
    }
    if (typeof body.detail === "string") return body.detail;
  }
  if (status === 0) return "The server cannot be reached.";
  return `The server answered ${status}.`;
}

/** Called when the server says the key is not (or no longer) valid. */
let onUnauthorized = () => {};
export function whenUnauthorized(fn) { onUnauthorized = fn; }

/** One API call; resolves to {body, headers}; rejects with ApiError (status 0: no answer). */
export async function call(method, path, body, { key = session.key } = {}) {
  const headers = { Accept: "application/json" };
  if (key) headers.Authorization = `APIKey ${key}`;
  const init = { method, headers, cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, describe(0));
  }
  let data = null;
  const text = await response.text();
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (!response.ok) {
    if (response.status === 401 && key === session.key) onUnauthorized();
    throw new ApiError(response.status, describe(response.status, data));
  }
  return { body: data, headers: response.headers };
}

export const api = {
  get: (path) => call("GET", path).then((r) => r.body),
  post: (path, body) => call("POST", path, body ?? {}).then((r) => r.body),
  patch: (path, body) => call("PATCH", path, body).then((r) => r.body),
  del: (path) => call("DELETE", path).then((r) => r.body),
};

/** `?a=1&b=x` from an object, leaving out empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}
