/** The distributor's metrics, in one table and their own Registry (served on /metrics). */
import { Counter, Gauge, Histogram, Registry } from "prom-client";

export interface DistributorMetrics {
  readonly registry: Registry;
  readonly connectedAgents: Gauge;
  readonly pushes: Counter;
  readonly acks: Counter;
  readonly nacks: Counter;
  /** Seconds from a BundleUpdate to its matching Ack. */
  readonly pushToAck: Histogram;
  /** 1 while a stream to an authority is open and answering. */
  readonly authorityConnected: Gauge;
  /** Bundles from the authority that failed verification: not cached, not served. */
  readonly bundlesRefused: Counter;
  /** Health samples dropped, oldest first, while no authority answered. */
  readonly healthDropped: Counter;
}

export function createDistributorMetrics(registry: Registry = new Registry()): DistributorMetrics {
  return {
    registry,
    connectedAgents: new Gauge({
      name: "coherent_distributor_connected_agents",
      help: "Agents with an open stream to this distributor.",
      registers: [registry],
    }),
    pushes: new Counter({
      name: "coherent_distributor_pushes_total",
      help: "BundleUpdates sent to agents.",
      registers: [registry],
    }),
    acks: new Counter({
      name: "coherent_distributor_acks_total",
      help: "Acks matched to a push.",
      registers: [registry],
    }),
    nacks: new Counter({
      name: "coherent_distributor_nacks_total",
      help: "Nacks matched to a push.",
      registers: [registry],
    }),
    pushToAck: new Histogram({
      name: "coherent_distributor_push_to_ack_seconds",
      help: "Time from a BundleUpdate to the agent's Ack.",
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    authorityConnected: new Gauge({
      name: "coherent_distributor_authority_connected",
      help: "1 while the AuthorityFeed stream is open and answering, 0 otherwise.",
      registers: [registry],
    }),
    bundlesRefused: new Counter({
      name: "coherent_distributor_bundles_refused_total",
      help: "Bundles from the authority refused by verification (never cached or served).",
      registers: [registry],
    }),
    healthDropped: new Counter({
      name: "coherent_distributor_health_samples_dropped_total",
      help: "Merged health samples dropped, oldest first, because no authority answered.",
      registers: [registry],
    }),
  };
}
