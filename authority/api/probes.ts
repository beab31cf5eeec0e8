/**
 * What orchestrators and Prometheus ask of an authority replica, without a token:
 * /healthz (the process answers), /ready (it can reach its database, so a load balancer
 * stops sending operators to a replica that would only answer 500s) and /metrics (its API's
 * requests by route and status, whether the database answers, distributors subscribed, and
 * the process's own figures).
 */
import type { FastifyInstance } from "fastify";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

export interface AuthorityProbes {
  /** Resolves when the database answers a trivial query, rejects otherwise. */
  ping(): Promise<void>;
  /** Distributor streams open on this replica's feed; 0 when it serves none. */
  feedSessions(): number;
}

/** A database slower than this is as good as down for /ready and coherent_authority_database_up. */
const PING_TIMEOUT_MS = 2_000;

export function registerProbes(app: FastifyInstance, probes: AuthorityProbes): void {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const requests = new Counter({
    name: "coherent_authority_requests_total",
    help: "API requests answered, by method, route template and status.",
    labelNames: ["method", "route", "status"] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: "coherent_authority_request_duration_seconds",
    help: "Time to answer an API request, by method and route template.",
    labelNames: ["method", "route"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  new Gauge({
    name: "coherent_authority_database_up",
    help: "1 when the database answered a trivial query within 2 s at scrape time.",
    registers: [registry],
    async collect() {
      this.set((await reachable(probes)) ? 1 : 0);
    },
  });
  new Gauge({
    name: "coherent_authority_feed_sessions",
    help: "Distributor streams open on this replica's AuthorityFeed.",
    registers: [registry],
    collect() {
      this.set(probes.feedSessions());
    },
  });

  app.addHook("onResponse", async (request, reply) => {
    // The route template, not the URL: label values stay as few as the routes are.
    const route = request.routeOptions.url ?? "unmatched";
    if (route === "/metrics") return;
    requests.labels(request.method, route, String(reply.statusCode)).inc();
    duration.labels(request.method, route).observe(reply.elapsedTime / 1000);
  });
  app.get("/healthz", { schema: { hide: true } }, async () => ({ status: "ok" }));
  app.get("/ready", { schema: { hide: true } }, async (_request, reply) =>
    (await reachable(probes))
      ? { status: "ready" }
      : reply.code(503).send({ status: "unavailable", reason: "the database does not answer" }),
  );
  app.get("/metrics", { schema: { hide: true } }, async (_request, reply) =>
    reply.type(registry.contentType).send(await registry.metrics()),
  );
}

async function reachable(probes: AuthorityProbes): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("timed out")), PING_TIMEOUT_MS);
  });
  try {
    await Promise.race([probes.ping(), timeout]);
    return true;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}
