// The JSON API client every page uses: the token, requests, errors, NDJSON and SSE streams.
// The token lives in sessionStorage: it ends with the tab and is never sent as a cookie, so
// no other site can make the browser use it (no CSRF), and the API stays Bearer-only.

const TOKEN_KEY = "mailhook.token";
const API = "/api/v1";

/** A failed request, with the API's own explanation (`detail`) when it gave one. */
export class ApiError extends Error {
  constructor(status, error, detail) {
    super(detail || error || `HTTP ${status}`);
    this.status = status;
    this.error = error;
    this.detail = detail;
  }
}

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function clearToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** Only same-site UI pages are followed after login (no open redirect). */
export function safeNext(next) {
  return typeof next === "string" && /^\/app\/[\w./?=&%-]*$/.test(next) && !next.includes("//")
    ? next
    : "/app/";
}

export function goToLogin(reason) {
  const here = location.pathname + location.search;
  const params = new URLSearchParams({ next: here });
  if (reason) params.set("reason", reason);
  location.assign(`/app/login.html?${params}`);
}

const FALLBACK = {
  0: "The server could not be reached. Check your connection and try again.",
  413: "That is too large for the server (the limit is 1 MiB).",
  429: "Too many requests. Wait a minute and try again.",
  500: "The server had an internal error. Try again later.",
  502: "The server is unavailable. Try again later.",
  503: "The service is unavailable right now. Try again later.",
};

async function errorOf(response) {
  let error = "";
  let detail = "";
  try {
    const body = await response.json();
    error = typeof body.error === "string" ? body.error : "";
    detail = typeof body.detail === "string" ? body.detail : "";
  } catch {
    // Not JSON (a proxy page, an empty body): fall back to a message per status.
  }
  return new ApiError(response.status, error, detail || FALLBACK[response.status] || `HTTP ${response.status}`);
}

/**
 * One request. `body` (an object) is sent as JSON, a string as it is (with `contentType`).
 * A 401 on a signed-in request means the session ended: back to login, unless `authErrors`
 * says the page handles a 401 itself (e.g. a wrong password when deleting the account).
 */
export async function request(method, path, { body, contentType, headers = {}, raw = false, authErrors = false } = {}) {
  const sent = { Accept: "application/json", ...headers };
  const token = getToken();
  if (token) sent.Authorization = `Bearer ${token}`;
  let payload;
  if (typeof body === "string") {
    payload = body;
    sent["Content-Type"] = contentType || "text/plain";
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    sent["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(API + path, { method, headers: sent, body: payload, cache: "no-store" });
  } catch {
    throw new ApiError(0, "NetworkError", FALLBACK[0]);
  }
  if (response.status === 401 && token && !authErrors && !path.startsWith("/auth/")) {
    clearToken();
    goToLogin("expired");
    throw new ApiError(401, "Unauthorized", "Your session has ended. Please sign in again.");
  }
  if (!response.ok) throw await errorOf(response);
  if (raw) return response;
  if (response.status === 204) return null;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

export const get = (path, options) => request("GET", path, options);
export const post = (path, body, options) => request("POST", path, { ...options, body });
export const patch = (path, body, options) => request("PATCH", path, { ...options, body });
export const del = (path, body, options) => request("DELETE", path, { ...options, body });

/** Read a newline-delimited JSON response line by line, calling `onLine` for each object. */
export async function readNdjson(response, onLine) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  for (;;) {
    const { value, done } = await reader.read();
    buffered += decoder.decode(value || new Uint8Array(), { stream: !done });
    let newline;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, newline).trim();
      buffered = buffered.slice(newline + 1);
      if (line) onLine(JSON.parse(line));
    }
    if (done) break;
  }
  if (buffered.trim()) onLine(JSON.parse(buffered));
}

/**
 * Live activity over Server-Sent Events. EventSource cannot send headers, so a short-lived
 * stream token (asked for with the JWT) goes in the URL instead of the JWT itself. The browser
 * reconnects on its own with Last-Event-ID; when the server refuses (an expired stream token),
 * a new token is fetched and a new stream opened from the last id seen (`?last_event_id=`).
 * States for `onState`: "live", "reconnecting", "unavailable" (no stream route: 404).
 */
export function activityStream(onItem, onState) {
  let source = null;
  let stopped = false;
  let failures = 0;
  let lastId = "";

  async function open() {
    if (stopped) return;
    let token;
    try {
      ({ token } = await post("/activity/stream-token"));
    } catch (err) {
      onState("unavailable", err);
      if (err.status !== 404) retry();
      return;
    }
    const url = new URL(`${API}/activity/stream`, location.origin);
    url.searchParams.set("token", token);
    // A new EventSource has no Last-Event-ID of its own: say where the last stream stopped.
    if (lastId) url.searchParams.set("last_event_id", lastId);
    source = new EventSource(url);
    source.onopen = () => {
      failures = 0;
      onState("live");
    };
    source.onmessage = (event) => {
      lastId = event.lastEventId || lastId;
      try {
        onItem(JSON.parse(event.data));
      } catch {
        // A malformed event is skipped; the next one still counts.
      }
    };
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        source = null;
        retry();
      } else {
        onState("reconnecting");
      }
    };
  }

  function retry() {
    failures += 1;
    onState("reconnecting");
    setTimeout(open, Math.min(30000, 1000 * 2 ** Math.min(failures, 5)));
  }

  open();
  return () => {
    stopped = true;
    if (source) source.close();
  };
}
