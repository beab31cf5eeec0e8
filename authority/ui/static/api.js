// The dashboard's access to /api/v1: the token kept for this tab, JSON reads, the event stream.

const TOKEN_KEY = "coherent.token";
const BASE = "/api/v1";

export function savedToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function saveToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** Thrown for any answer but 2xx; `status` 401 means the token is no longer good. */
export class ApiFailure extends Error {
  constructor(status, body) {
    super(body?.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = body?.error;
  }
}

export async function get(path, token = savedToken()) {
  const response = await fetch(`${BASE}${path}`, {
    headers: { authorization: `Bearer ${token}`, accept: "application/json" },
    cache: "no-store",
  });
  const body = await response.json().catch(() => undefined);
  if (!response.ok) throw new ApiFailure(response.status, body);
  return body;
}

/**
 * The live stream. EventSource cannot send headers, so the token rides in the query (this
 * route only). It reconnects by itself; `onState` hears "live" or "reconnecting".
 */
export function subscribe(handlers, onState) {
  const source = new EventSource(`${BASE}/events?token=${encodeURIComponent(savedToken() ?? "")}`);
  source.addEventListener("open", () => onState("live"));
  source.addEventListener("error", () =>
    onState(source.readyState === EventSource.CLOSED ? "closed" : "reconnecting"),
  );
  for (const [event, handler] of Object.entries(handlers)) {
    source.addEventListener(event, (message) => handler(JSON.parse(message.data)));
  }
  return () => source.close();
}
