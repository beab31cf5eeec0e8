/**
 * Gentle demo traffic: a steady trickle of GETs spread over the agents in turn, so a rollout's
 * gates have candidate requests to judge (the controller waits for each stage's min_requests)
 * and the dashboard has something to show. Answers are read and counted, never retried.
 */
import { Agent, request } from "undici";

export interface TrafficCounts {
  readonly sent: number;
  /** Answers by status class: "2xx", "5xx", … and "error" for no answer at all. */
  readonly byStatus: Readonly<Record<string, number>>;
}

export interface DemoTraffic {
  counts(): TrafficCounts;
  /** Stops sending and waits for the requests in flight. Idempotent. */
  stop(): Promise<void>;
}

const PATHS = ["/", "/users/42", "/orders?limit=5", "/catalog/items/7"];
/** A request the agent has not answered by then is counted as an error. */
const REQUEST_TIMEOUT_MS = 5_000;

/** `targets()` is asked at every request, so agents whose URL changed are followed. */
export function startDemoTraffic(targets: () => readonly string[], perSecond: number): DemoTraffic {
  const dispatcher = new Agent({ keepAliveTimeout: 10_000, connections: 4 });
  const byStatus: Record<string, number> = {};
  let sent = 0;
  const inFlight = new Set<Promise<void>>();
  const send = (): void => {
    const urls = targets();
    if (urls.length === 0) return;
    const url = `${urls[sent % urls.length]}${PATHS[sent % PATHS.length]}`;
    sent++;
    const done = request(url, {
      dispatcher,
      headersTimeout: REQUEST_TIMEOUT_MS,
      bodyTimeout: REQUEST_TIMEOUT_MS,
    })
      .then(async (response) => {
        await response.body.dump();
        const key = `${Math.floor(response.statusCode / 100)}xx`;
        byStatus[key] = (byStatus[key] ?? 0) + 1;
      })
      .catch(() => {
        byStatus.error = (byStatus.error ?? 0) + 1;
      })
      .finally(() => inFlight.delete(done));
    inFlight.add(done);
  };
  const timer = perSecond > 0 ? setInterval(send, 1000 / perSecond) : undefined;
  let stopping: Promise<void> | undefined;
  return {
    counts: () => ({ sent, byStatus: { ...byStatus } }),
    stop() {
      stopping ??= (async () => {
        clearInterval(timer);
        await Promise.all(inFlight);
        await dispatcher.close();
      })();
      return stopping;
    },
  };
}
