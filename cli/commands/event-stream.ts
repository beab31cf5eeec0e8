/**
 * Follows the authority's Server-Sent Events (`GET /api/v1/events`) so a watch hears of a
 * change when it happens instead of at its next poll. A hint only: the watch keeps polling,
 * so a stream that fails, closes or never opens (an older authority, a proxy that buffers)
 * costs latency, never correctness; it is opened again after a pause until `signal` aborts.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { Agent, request } from "undici";
import type { Connection } from "../client.js";

export interface ServerEvent {
  readonly event: string;
  readonly data: string;
}

const REOPEN_AFTER_MS = 3_000;

/** Calls `onEvent` for each event of the stream until `signal` aborts; never throws. */
export async function followEvents(
  connection: Connection,
  onEvent: (event: ServerEvent) => void,
  signal: AbortSignal,
): Promise<void> {
  // No body timeout: the stream is meant to stay open; the server's heartbeat keeps it alive.
  const dispatcher = new Agent({ bodyTimeout: 0 });
  const headers: Record<string, string> = { accept: "text/event-stream" };
  if (connection.token) headers.authorization = `Bearer ${connection.token}`;
  try {
    while (!signal.aborted) {
      try {
        const response = await request(`${connection.server}/api/v1/events`, {
          dispatcher,
          headers,
          signal,
        });
        if (response.statusCode === 200) {
          const parser = createEventParser(onEvent);
          for await (const chunk of response.body) parser(String(chunk));
        } else {
          await response.body.dump();
        }
      } catch {
        // Unreachable, refused or aborted: polling carries on without the hints.
      }
      await sleep(REOPEN_AFTER_MS, undefined, { signal }).catch(() => undefined);
    }
  } finally {
    await dispatcher.destroy().catch(() => undefined);
  }
}

/**
 * The text/event-stream format, as much as the authority uses: `event:` and `data:` fields,
 * an event per blank line, comments (`:`) ignored. Text arrives in chunks that may split a line.
 */
export function createEventParser(onEvent: (event: ServerEvent) => void): (chunk: string) => void {
  let pending = "";
  let event = "message";
  let data: string[] = [];
  return (chunk) => {
    pending += chunk;
    const lines = pending.split(/\r?\n/);
    pending = lines.pop() ?? "";
    for (const line of lines) {
      if (line === "") {
        if (data.length > 0) onEvent({ event, data: data.join("\n") });
        event = "message";
        data = [];
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon === -1 ? line : line.slice(0, colon);
      const value = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
    }
  };
}
