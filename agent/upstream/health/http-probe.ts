/**
 * The HTTP probe of active health checks: a GET of the pool's health path through the
 * endpoint's own undici dispatcher, so a probe travels exactly as requests do (TLS, SNI,
 * client certificate, HTTP/2) and reuses their connections.
 */
import type { Dispatcher } from "undici";
import type { Probe } from "./active-checker.js";

/** Health bodies are small; past this the connection is closed rather than read to the end. */
const MAX_DRAINED_BYTES = 64 * 1024;

export function httpProbe(dispatcher: Dispatcher, origin: string, path: string): Probe {
  return async (timeoutMs, signal) => {
    const deadline = AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]);
    const response = await dispatcher.request({
      origin,
      path,
      method: "GET",
      headers: { "user-agent": "coherent-health-check" },
      signal: deadline,
    });
    // Reading the body to its end lets the connection be reused by the next probe or request.
    await response.body.dump({ limit: MAX_DRAINED_BYTES, signal: deadline });
    return response.statusCode;
  };
}
