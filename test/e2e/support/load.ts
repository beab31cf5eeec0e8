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
}

export interface SteadyLoad {
  /** Ends the load after the round in flight; resolves with what happened. */
  stop(): Promise<LoadResult>;
}

export function steadyLoad(urls: readonly string[], pauseMs = 20): SteadyLoad {
  let running = true;
  let sent = 0;
  const failures: string[] = [];
  const one = async (url: string): Promise<void> => {
    try {
      const response = await request(url, { timeoutMs: 2_000 });
      await response.drain();
      if (response.status < 200 || response.status > 299) failures.push(`GET ${url}: ${response.status}`);
    } catch (error) {
      failures.push(`GET ${url}: ${(error as Error).message}`);
    }
    sent++;
  };
  const loop = (async () => {
    while (running) {
      await Promise.all(urls.map(one));
      await sleep(pauseMs);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { sent, failures };
    },
  };
}
