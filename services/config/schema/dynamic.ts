/**
 * The dynamic config: what traffic does. It changes often and always without downtime, as a
 * new snapshot. This schema checks each field on its own and normalizes units; checks that
 * span fields or sections (references, duplicates, exclusive fields) are in ../semantics.ts.
 *
 * Defaults are not filled in here: the canonical form keeps what the operator wrote, so a
 * default that changes in a later release does not change every config's content hash.
 * Components apply defaults when they compile a config.
 */
import { z } from "zod";
import {
  burnRate,
  duration,
  endpointAddress,
  filePath,
  headerMap,
  headerName,
  hostPattern,
  id,
  listenAddress,
  methodList,
  nonNegativeInt,
  percent,
  positiveInt,
  ratio,
  regex,
  requestKey,
  routePath,
  size,
  statusRange,
  strict,
  urlString,
} from "./primitives.js";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

// ---------------------------------------------------------------------------------------------
// Listeners

export const ListenerSchema = strict({
  address: listenAddress().describe('Where to listen: ":8080", "127.0.0.1:8080", "[::]:8443"'),
  protocol: z
    .enum(["http", "https"])
    .optional()
    .describe("Plain HTTP or TLS; https uses tls.certificates (default http)"),
  http2: z.boolean().optional().describe("Offer HTTP/2 by ALPN on an https listener (default true)"),
  read_timeout: duration({ max: DAY })
    .optional()
    .describe("Time to read a whole request (default: no limit)"),
  write_timeout: duration({ max: DAY })
    .optional()
    .describe("Time to write a whole response (default: no limit)"),
  read_header_timeout: duration({ max: HOUR })
    .optional()
    .describe("Time to read the request headers (default: the static config's, else 10s)"),
  idle_timeout: duration({ max: DAY })
    .optional()
    .describe("Keep-alive connection idle time (default: the static config's, else 90s)"),
  max_header_size: size({ min: 1024, max: 1024 ** 2 })
    .optional()
    .describe("Largest request header block (default: the static config's, else 16KB)"),
});

// ---------------------------------------------------------------------------------------------
// Policies

export const RetriesSchema = strict({
  max_attempts: positiveInt(10).describe("All attempts, the first included"),
  budget_percent: percent()
    .optional()
    .describe("Retries may not exceed this % of successful requests (default 10)"),
  idempotent_only: z
    .boolean()
    .optional()
    .describe("Retry only GET, HEAD, OPTIONS, PUT, DELETE (default true)"),
  backoff: strict({
    base: duration({ min: 1, max: HOUR }).describe(
      "Backoff before the first retry; doubles with each retry (default 25ms)",
    ),
    max: duration({ min: 1, max: HOUR }).describe("Longest backoff between two attempts (default 250ms)"),
  })
    .optional()
    .describe("Exponential backoff with full jitter between attempts"),
});

export const RateLimitSchema = strict({
  requests_per_second: z.number().positive().describe("Sustained rate allowed (token bucket refill)"),
  burst: positiveInt()
    .optional()
    .describe("Requests allowed at once above the rate (default: requests_per_second, rounded up)"),
  key: requestKey()
    .optional()
    .describe("Limit per client_ip, header:NAME or cookie:NAME (default: per route)"),
});

export const CircuitBreakerSchema = strict({
  error_threshold_percent: percent()
    .optional()
    .describe("Error % in the window that opens the breaker (default 50)"),
  min_requests: positiveInt()
    .optional()
    .describe("Requests in the window before the error rate counts (default 20)"),
  open_duration: duration({ min: 1, max: DAY })
    .optional()
    .describe("How long the breaker stays open before probing (default 30s)"),
  window: duration({ min: 100, max: HOUR })
    .optional()
    .describe("Rolling window for the error rate (default 10s)"),
  half_open_requests: positiveInt(1000)
    .optional()
    .describe("Probe requests let through while half-open (default 3)"),
  max_concurrent_requests: positiveInt()
    .optional()
    .describe("Requests in flight upstream at most; more are refused (default: no limit)"),
  max_pending_requests: nonNegativeInt()
    .optional()
    .describe("Requests waiting for a connection at most; more are refused (default: no limit)"),
});

export const HedgingSchema = strict({
  delay: duration({ min: 1, max: HOUR }).describe(
    "Send a hedge when the first attempt has not answered by then",
  ),
  max_hedges: positiveInt(5).optional().describe("Extra attempts sent besides the first (default 1)"),
});

/** The body of a policy, shared by named `policies` and a route's inline `policy`. */
export const policyFields = {
  timeout: duration({ min: 1, max: DAY })
    .optional()
    .describe("Whole-request deadline, retries included (default 30s)"),
  retries: RetriesSchema.optional().describe("Retry failed attempts (default: one attempt, no retries)"),
  rate_limit: RateLimitSchema.optional().describe("Token-bucket rate limit; over it requests get 429"),
  circuit_breaker: CircuitBreakerSchema.optional().describe("Stop sending to a failing upstream for a while"),
  hedging: HedgingSchema.optional().describe(
    "Send a second attempt when the first is slow; the first answer wins",
  ),
  body_size_limit: size()
    .optional()
    .describe("Largest request body accepted; larger gets 413 (default: no limit)"),
  require_tls: z.boolean().optional().describe("Refuse plain-HTTP requests with 403"),
};

export const PolicySchema = strict({
  id: id().describe("Unique policy id, named by routes' policy_ref and rate_limit stages"),
  ...policyFields,
});
export const InlinePolicySchema = strict(policyFields);

// ---------------------------------------------------------------------------------------------
// Routes

const ValueMatchSchema = z.union([
  z.string().describe("Exact value"),
  strict({ prefix: z.string().describe("The value starts with this") }),
  strict({ regex: regex().describe("The value matches this regular expression") }),
  strict({ present: z.boolean().describe("true: present with any value; false: absent") }),
]);

export const RouteSchema = strict({
  id: id().describe("Unique route id, used in metrics, logs and diffs"),
  host: hostPattern().optional().describe("Exact, *.wildcard or anchored regex; absent matches any host"),
  path: routePath().optional().describe("Exact path"),
  path_prefix: routePath()
    .optional()
    .describe(
      "Path prefix of the normalized path, a plain string prefix as Envoy's: /api matches /api/x and /apix (end it with / for whole segments)",
    ),
  path_regex: regex().optional().describe("Regular expression the whole path must match"),
  methods: methodList().optional().describe("Methods matched (default: any)"),
  headers: headerMap(ValueMatchSchema)
    .optional()
    .describe("Request headers that must match: header name → exact value or match"),
  query: z
    .record(z.string().min(1), ValueMatchSchema)
    .optional()
    .describe("Query parameters that must match: name → exact value or match"),
  pool: id().optional().describe("The pool requests go to (or the traffic plan's stable_pool)"),
  policy: InlinePolicySchema.optional().describe("The route's own policy (instead of policy_ref)"),
  policy_ref: id().optional().describe("The id of a named policy in policies"),
  middleware: id().optional().describe("The middleware chain requests of this route run through"),
  require_tls: z.boolean().optional().describe("Refuse plain-HTTP requests with 403"),
  require_mtls: z
    .boolean()
    .optional()
    .describe("Refuse requests without a verified client certificate with 403 (needs tls.mtls)"),
});

// ---------------------------------------------------------------------------------------------
// Pools

export const EndpointSchema = strict({
  address: endpointAddress().describe("The upstream's host:port"),
  weight: positiveInt(10_000).optional().describe("Relative share with weighted_round_robin (default 1)"),
});

export const ActiveHealthSchema = strict({
  interval: duration({ min: 100, max: HOUR }).describe("Time between probes of each endpoint"),
  timeout: duration({ min: 1, max: HOUR })
    .optional()
    .describe("Time a probe may take (default 1s, at most interval)"),
  path: z.string().startsWith("/").optional().describe("Path probed with GET (default /health)"),
  expected_status: statusRange().optional().describe("Statuses counted healthy (default 200-399)"),
  jitter: percent()
    .optional()
    .describe("Random spread of the interval, so agents do not probe in lockstep (default 10)"),
  healthy_threshold: positiveInt(100)
    .optional()
    .describe("Passing probes in a row that mark an endpoint healthy (default 1)"),
  unhealthy_threshold: positiveInt(100)
    .optional()
    .describe("Failing probes in a row that mark an endpoint unhealthy (default 2)"),
});

export const PassiveHealthSchema = strict({
  consecutive_failures: positiveInt(1000).describe("Failed requests in a row that eject an endpoint"),
  ejection_duration: duration({ min: 1, max: DAY })
    .optional()
    .describe("How long an ejected endpoint gets no traffic (default 30s)"),
});

export const OutlierDetectionSchema = strict({
  consecutive_failures: positiveInt(1000)
    .optional()
    .describe("Failures in a row that eject an endpoint (default 5)"),
  error_rate_threshold: percent().optional().describe("Error % that ejects an endpoint (default: off)"),
  max_ejection_percent: percent()
    .optional()
    .describe("Share of the pool that may be ejected at once; one always may (default 10)"),
  interval: duration({ min: 100, max: HOUR })
    .optional()
    .describe("How often error rates are evaluated (default 10s)"),
  base_ejection_time: duration({ min: 1, max: DAY })
    .optional()
    .describe("Grows with each repeated ejection (default 30s)"),
  min_requests: positiveInt()
    .optional()
    .describe("Requests an endpoint needs before its error rate counts (default 20)"),
});

export const UpstreamTlsSchema = strict({
  sni: z.string().min(1).optional().describe("Server name sent and verified (default: the endpoint's host)"),
  ca_file: filePath()
    .optional()
    .describe("CA certificates (PEM) that verify the upstream (default: the system's)"),
  cert_file: filePath().optional().describe("Client certificate (PEM) for mutual TLS"),
  key_file: filePath().optional().describe("Private key (PEM) of cert_file"),
  verify: z.boolean().optional().describe("Verify the upstream's certificate (default true)"),
});

export const BALANCERS = ["round_robin", "weighted_round_robin", "least_request", "consistent_hash"] as const;

export const PoolSchema = strict({
  id: id().describe("Unique pool id, used by routes and in metrics"),
  endpoints: z
    .array(EndpointSchema)
    .min(1, { error: "a pool needs at least one endpoint" })
    .describe("The upstream servers"),
  balancer: z.enum(BALANCERS).optional().describe("How an endpoint is picked (default round_robin)"),
  hash_on: requestKey().optional().describe("consistent_hash key: header:NAME, cookie:NAME or client_ip"),
  protocol: z
    .enum(["http1", "h2"])
    .optional()
    .describe("HTTP/1.1 or HTTP/2 to the upstream (default http1); h2 without tls is h2c"),
  tls: UpstreamTlsSchema.optional().describe("Connect to the endpoints over TLS"),
  connection_pool: strict({
    max_connections: positiveInt()
      .optional()
      .describe("Connections per endpoint at most (default: no limit)"),
    connect_timeout: duration({ min: 1, max: HOUR })
      .optional()
      .describe("Time to open a connection (default 5s)"),
    idle_timeout: duration({ min: 1, max: DAY })
      .optional()
      .describe("Idle connections close after this (default 60s)"),
  })
    .optional()
    .describe("Connections kept to each endpoint"),
  health: strict({
    active: ActiveHealthSchema.optional().describe("Probe each endpoint periodically"),
    passive: PassiveHealthSchema.optional().describe("Eject endpoints whose requests fail"),
  })
    .optional()
    .describe("Health checking of the endpoints"),
  circuit_breaker: CircuitBreakerSchema.optional().describe("Stop sending to the pool while it fails"),
  outlier_detection: OutlierDetectionSchema.optional().describe(
    "Eject endpoints that fail more than the rest",
  ),
});

// ---------------------------------------------------------------------------------------------
// Middleware

const HeaderEditsSchema = strict({
  add: headerMap(z.string()).optional().describe("Headers added, keeping values already there"),
  set: headerMap(z.string()).optional().describe("Headers set, replacing values already there"),
  remove: z.array(headerName()).optional().describe("Headers removed"),
});

export const JwtSchema = strict({
  issuer: z.string().min(1).describe("Required iss claim"),
  audience: z
    .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
    .optional()
    .describe("Accepted aud claim values (default: not checked)"),
  jwks_uri: urlString().optional().describe("Where the signing keys (JWKS) are fetched"),
  jwks_file: filePath().optional().describe("A JWKS file with the signing keys (instead of jwks_uri)"),
  algorithms: z
    .array(z.enum(["EdDSA", "ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]))
    .min(1)
    .optional()
    .describe("Accepted signature algorithms (default: any of these)"),
  clock_skew: duration({ max: HOUR }).optional().describe("Tolerance for exp and nbf (default 30s)"),
  forward_claims: z
    .record(z.string().min(1), headerName())
    .optional()
    .describe("Claim → request header sent upstream"),
});

export const STAGE_TYPES = [
  "request_id",
  "auth",
  "rate_limit",
  "header_transform",
  "tracing",
  "access_log",
  "plugin",
] as const;

export const StageSchema = z.discriminatedUnion("type", [
  strict({
    type: z.literal("request_id").describe("What the stage does"),
    config: strict({
      header: headerName().optional().describe("Header carrying the request id (default x-request-id)"),
    })
      .optional()
      .describe("Give each request an id (kept when the client sent one), sent upstream and back"),
  }),
  strict({
    type: z.literal("auth"),
    config: strict({ jwt: JwtSchema.describe("Require a valid JWT bearer token; 401 otherwise") }).describe(
      "Authenticate requests",
    ),
  }),
  strict({
    type: z.literal("rate_limit"),
    policy_ref: id().describe("The policy whose rate_limit applies"),
    config: strict({
      key: requestKey().optional().describe("Limit per this key instead of the policy's rate_limit.key"),
    })
      .optional()
      .describe("Overrides of the policy's rate limit"),
  }),
  strict({
    type: z.literal("header_transform"),
    config: strict({
      ...HeaderEditsSchema.shape,
      response: HeaderEditsSchema.optional().describe("Edits of the response headers"),
    }).describe("Edits of the request headers sent upstream, and of the response's"),
  }),
  strict({ type: z.literal("tracing") }),
  strict({ type: z.literal("access_log") }),
  strict({ type: z.literal("plugin"), plugin: id().describe("The id of an entry in plugins") }),
]);

export const MiddlewareChainSchema = strict({
  id: id().describe("Unique chain id, named by routes' middleware"),
  stages: z
    .array(StageSchema)
    .min(1, { error: "a middleware chain needs at least one stage" })
    .describe("Stages run in order on each request"),
});

// ---------------------------------------------------------------------------------------------
// Traffic management

export const CohortRoutingSchema = strict({
  header: headerName().optional().describe("Pick the pool by this header's value"),
  cookie: z.string().min(1).optional().describe("Pick the pool by this cookie's value"),
  hash_on: requestKey().optional().describe("Pick the pool by a consistent hash of this key"),
  mappings: z.record(z.string().min(1), id()).optional().describe("Header or cookie value → pool"),
  weights: z.record(id(), positiveInt(10_000)).optional().describe("With hash_on: pool → share"),
});

export const OverloadProtectionSchema = strict({
  max_concurrent: positiveInt().describe("Requests in flight on the route at most"),
  queue_size: nonNegativeInt().optional().describe("Requests that may wait for a slot (default 0)"),
  queue_timeout: duration({ min: 1, max: HOUR })
    .optional()
    .describe("How long a request may wait in the queue (default 1s)"),
  adaptive: z
    .boolean()
    .optional()
    .describe("Adjust the limit from observed latency (gradient) (default false)"),
  min_concurrent: positiveInt().optional().describe("Lowest limit the adaptive mode goes to (default 1)"),
});

export const SafetyBrakeSchema = strict({
  error_rate_margin: percent().describe("Brake when canary error % exceeds stable's by this many points"),
  window: duration({ min: 1000, max: HOUR })
    .optional()
    .describe("Window the error rates are compared over (default 1m)"),
  min_requests: positiveInt()
    .optional()
    .describe("Canary requests in the window before the brake may act (default 20)"),
});

export const TrafficPlanSchema = strict({
  route: id().describe("The id of the route this plan applies to"),
  stable_pool: id().optional().describe("Pool for requests not sent to the canary"),
  canary_pool: id().optional().describe("Pool receiving canary traffic"),
  canary_weight: percent().optional().describe("Share of requests sent to canary_pool (default 0)"),
  safety_brake: SafetyBrakeSchema.optional().describe(
    "Send all traffic back to stable_pool when the canary errs more",
  ),
  cohort_routing: CohortRoutingSchema.optional().describe(
    "Pick the pool per request by header, cookie or hash",
  ),
  overload_protection: OverloadProtectionSchema.optional().describe(
    "Limit the route's concurrent requests; excess waits or gets 503",
  ),
});

// ---------------------------------------------------------------------------------------------
// Cache

export const CacheSchema = strict({
  route: id().describe("The id of the route whose responses are cached"),
  enabled: z.boolean().optional().describe("false turns the rule off (default true)"),
  ttl: duration({ min: 1, max: 365 * DAY })
    .optional()
    .describe("Lifetime of responses that state none (no max-age or Expires); absent: those are not stored"),
  vary_headers: z
    .array(headerName())
    .optional()
    .describe("Request headers that tell cached variants apart, besides the response's Vary"),
  max_size: size({ min: 1 }).optional().describe("Memory for the route's cache (default 64MB)"),
  max_entry_size: size({ min: 1 })
    .optional()
    .describe("Largest response stored (default: 1MB or max_size / 8, the smaller)"),
  auth_aware: z
    .boolean()
    .optional()
    .describe(
      "Key entries on the Authorization and Cookie values, so no one sees another's response (default false)",
    ),
  coalesce: z
    .boolean()
    .optional()
    .describe("Concurrent misses for one key wait for a single upstream request (default false)"),
  coalesce_timeout: duration({ min: 1, max: HOUR })
    .optional()
    .describe("How long a coalesced request waits before going upstream itself (default 5s)"),
});

// ---------------------------------------------------------------------------------------------
// Plugins

const FAIL_MODE = z.enum(["open", "closed"]).describe("On timeout or crash: continue (open) or 503 (closed)");

export const PluginSchema = z.discriminatedUnion("type", [
  strict({
    id: id().describe("Unique plugin id, named by plugin stages"),
    type: z.literal("external_grpc").describe("A gRPC filter service, or a plugin built into the agent"),
    address: endpointAddress().describe("The filter service's host:port"),
    timeout: duration({ min: 1, max: 60_000 })
      .optional()
      .describe("Time the service may take per call (default 50ms)"),
    fail_mode: FAIL_MODE.optional().describe(
      "On timeout or crash: continue (open) or 503 (closed) (default closed)",
    ),
    tls: UpstreamTlsSchema.optional().describe("Connect to the service over TLS"),
  }),
  strict({
    id: id().describe("Unique plugin id, named by plugin stages"),
    type: z.literal("builtin"),
    name: z.enum(["structured_logger"]).describe("Which built-in plugin"),
    fail_mode: FAIL_MODE.optional().describe(
      "On timeout or crash: continue (open) or 503 (closed) (default open)",
    ),
    config: strict({
      headers: z.array(headerName()).optional().describe("Request headers whose values each line carries"),
    })
      .optional()
      .describe("structured_logger settings"),
  }),
]);

// ---------------------------------------------------------------------------------------------
// TLS

export const CertificateSchema = strict({
  cert_file: filePath().describe("Certificate chain (PEM)"),
  key_file: filePath().describe("Private key (PEM)"),
  sni: z
    .union([hostPattern(), z.array(hostPattern()).min(1)])
    .optional()
    .describe("Names served with this certificate; absent: the default certificate"),
});

export const TlsSchema = strict({
  certificates: z
    .array(CertificateSchema)
    .optional()
    .describe("Certificates for https listeners, picked by SNI"),
  mtls: strict({
    enabled: z.boolean().optional().describe("Ask clients for a certificate (default false)"),
    ca_file: filePath().optional().describe("CA certificates (PEM) that verify client certificates"),
    require_client_cert: z
      .boolean()
      .optional()
      .describe("Refuse the handshake without a valid client certificate (default false)"),
  })
    .optional()
    .describe("Client certificates on https listeners"),
  min_version: z
    .enum(["TLSv1.2", "TLSv1.3"])
    .optional()
    .describe("Lowest TLS version accepted (default TLSv1.2)"),
});

// ---------------------------------------------------------------------------------------------
// Rollout plan

export const RolloutStageSchema = strict({
  name: z.string().min(1).describe("Stage name, shown in status and events"),
  fleet_percent: percent().describe("Share of the fleet's agents on the candidate in this stage"),
  bake_time: duration({ max: 7 * DAY })
    .optional()
    .describe("How long the stage runs with passing gates before the next (default 0s)"),
  min_requests: nonNegativeInt()
    .optional()
    .describe("Candidate requests needed before the stage can promote"),
});

export const HealthGateSchema = z.discriminatedUnion("metric", [
  strict({
    metric: z.literal("error_rate").describe("What the gate measures on the candidate cohort"),
    threshold: ratio().optional().describe("Absolute: 0.01 or 1%"),
    relative_to_stable: z.number().min(1).optional().describe("At most this multiple of the stable cohort's"),
  }),
  strict({
    metric: z.literal("p95_latency"),
    threshold: duration({ min: 1, max: HOUR }).optional().describe("Absolute: at most this latency"),
    relative_to_stable: z.number().min(1).optional().describe("At most this multiple of the stable cohort's"),
  }),
]);

export const RolloutSchema = strict({
  stages: z
    .array(RolloutStageSchema)
    .min(1)
    .describe("Stages in order; the last usually has fleet_percent 100"),
  health_gates: z
    .array(HealthGateSchema)
    .optional()
    .describe("Checks every stage must pass before it promotes"),
  auto_rollback: strict({
    error_budget_burn_rate: burnRate().describe(
      "Roll back when both windows burn the budget faster than this",
    ),
    slo: strict({
      objective: percent().describe("Availability objective, e.g. 99.9 (default 99.9)"),
      short_window: duration({ min: 1000, max: 7 * DAY })
        .optional()
        .describe("Short burn-rate window (default 5m, or long_window / 12)"),
      long_window: duration({ min: 1000, max: 30 * DAY })
        .optional()
        .describe("Long burn-rate window (default 1h, or 12 × short_window)"),
    })
      .optional()
      .describe("The objective the error budget comes from"),
  })
    .optional()
    .describe("Roll back on error-budget burn rate (SRE workbook multi-window alert)"),
  min_requests: nonNegativeInt()
    .optional()
    .describe(
      "Candidate requests needed before a stage can promote, for stages that name none (default 100)",
    ),
});

// ---------------------------------------------------------------------------------------------
// The whole document

export const DynamicConfigSchema = strict({
  version: z
    .literal("v1", { error: 'the config format version is "v1"' })
    .optional()
    .describe("Config format version"),
  signature: z.string().optional().describe("Accepted for compatibility; bundles carry their own signature"),
  listeners: z.array(ListenerSchema).optional().describe("Where the agent accepts traffic"),
  routes: z.array(RouteSchema).optional().describe("Which requests go where, matched most specific first"),
  pools: z.array(PoolSchema).optional().describe("Upstream server groups"),
  policies: z.array(PolicySchema).optional().describe("Named policies routes refer to with policy_ref"),
  middleware: z.array(MiddlewareChainSchema).optional().describe("Named middleware chains routes refer to"),
  traffic_management: z
    .array(TrafficPlanSchema)
    .optional()
    .describe("Canary, cohort routing and overload protection, per route"),
  cache: z.array(CacheSchema).optional().describe("Response caching, per route"),
  plugins: z.array(PluginSchema).optional().describe("Plugins middleware chains can run"),
  tls: TlsSchema.optional().describe("Certificates and client-certificate checks for https listeners"),
  certificates: z.array(CertificateSchema).optional().describe("Same as tls.certificates"),
  rollout: RolloutSchema.optional().describe(
    "The rollout plan bundles of this config roll out with; see Rollout plan",
  ),
});

/** A config as written (strings like "5s" allowed). */
export type DynamicConfigInput = z.input<typeof DynamicConfigSchema>;
/** A config after parsing: units normalized (ms, bytes, percent points), names lowercased. */
export type DynamicConfig = z.output<typeof DynamicConfigSchema>;

export type Listener = z.output<typeof ListenerSchema>;
export type Route = z.output<typeof RouteSchema>;
export type Pool = z.output<typeof PoolSchema>;
export type Policy = z.output<typeof PolicySchema>;
export type InlinePolicy = z.output<typeof InlinePolicySchema>;
export type MiddlewareChain = z.output<typeof MiddlewareChainSchema>;
export type Stage = z.output<typeof StageSchema>;
export type TrafficPlan = z.output<typeof TrafficPlanSchema>;
export type CacheRule = z.output<typeof CacheSchema>;
export type Plugin = z.output<typeof PluginSchema>;
export type TlsConfig = z.output<typeof TlsSchema>;
export type Certificate = z.output<typeof CertificateSchema>;
export type JwtConfig = z.output<typeof JwtSchema>;
export type RolloutPlan = z.output<typeof RolloutSchema>;
export type HealthGate = z.output<typeof HealthGateSchema>;
