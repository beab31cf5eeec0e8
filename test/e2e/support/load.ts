/**
 * A small steady load through proxies while something else breaks: one request per URL at a
 * time, a short pause between rounds, every answer that is not 2xx and every failed request
 * kept, so a test can require that none failed.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { request } from "../../support/http.js";

export interface LoadResult {
  readonly sent: number;
  /** "GET url: status" or "GET url: error message", in order. */
  readonly failures: readonly string[];
  /** Answers by their `x-upstream` header (the upstreams of test/support/upstream.ts name themselves). */
  readonly byUpstream: Readonly<Record<string, number>>;
}

export interface SteadyLoad {
  /** Sends to `url` too from the next round on: an agent that joined meanwhile. */
  add(url: string): void;
  /** Ends the load after the round in flight; resolves with what happened. */
  stop(): Promise<LoadResult>;
}

export function steadyLoad(urls: readonly string[], pauseMs = 20): SteadyLoad {
  let running = true;
  let sent = 0;
  const targets = [...urls];
  const failures: string[] = [];
  const byUpstream: Record<string, number> = {};
  const one = async (url: string): Promise<void> => {
    try {
      const response = await request(url, { timeoutMs: 2_000 });
      await response.drain();
      const upstream = response.headers["x-upstream"];
      if (typeof upstream === "string") byUpstream[upstream] = (byUpstream[upstream] ?? 0) + 1;
      if (response.status < 200 || response.status > 299) failures.push(`GET ${url}: ${response.status}`);
    } catch (error) {
      failures.push(`GET ${url}: ${(error as Error).message}`);
    }
    sent++;
  };
  const loop = (async () => {
    while (running) {
      await Promise.all(targets.map(one));
      await sleep(pauseMs);
    }
  })();
  return {
    add(url) {
      targets.push(url);
    },
    async stop() {
      running = false;
      await loop;
      return { sent, failures, byUpstream };
    },
  };
}
