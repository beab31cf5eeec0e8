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
    .describe("http (default) or https; https uses tls.certificates"),
  http2: z.boolean().optional().describe("Offer HTTP/2 by ALPN on an https listener (default true)"),
  read_timeout: duration({ max: DAY }).optional().describe("Time to read a whole request"),
  write_timeout: duration({ max: DAY }).optional().describe("Time to write a whole response"),
  read_header_timeout: duration({ max: HOUR }).optional().describe("Time to read the request headers"),
  idle_timeout: duration({ max: DAY }).optional().describe("Keep-alive connection idle time"),
  max_header_size: size({ min: 1024, max: 1024 ** 2 })
    .optional()
    .describe("Largest request header block"),
});

// ---------------------------------------------------------------------------------------------
// Policies

export const RetriesSchema = strict({
  max_attempts: positiveInt(10).describe("All attempts, the first included"),
  budget_percent: percent().optional().describe("Retries may not exceed this % of successful requests"),
  idempotent_only: z.boolean().optional().describe("Retry only GET, HEAD, OPTIONS, PUT, DELETE"),
  backoff: strict({
    base: duration({ min: 1, max: HOUR }),
    max: duration({ min: 1, max: HOUR }),
  })
    .optional()
    .describe("Exponential backoff with full jitter between attempts"),
});

export const RateLimitSchema = strict({
  requests_per_second: z.number().positive(),
  burst: positiveInt().optional(),
  key: requestKey()
    .optional()
    .describe("Limit per client_ip, header:NAME or cookie:NAME (default: per route)"),
});

export const CircuitBreakerSchema = strict({
  error_threshold_percent: percent().optional(),
  min_requests: positiveInt().optional().describe("Requests in the window before the error rate counts"),
  open_duration: duration({ min: 1, max: DAY }).optional(),
  window: duration({ min: 100, max: HOUR }).optional().describe("Rolling window for the error rate"),
  half_open_requests: positiveInt(1000).optional().describe("Probe requests let through while half-open"),
  max_concurrent_requests: positiveInt().optional(),
  max_pending_requests: nonNegativeInt().optional(),
});

export const HedgingSchema = strict({
  delay: duration({ min: 1, max: HOUR }).describe(
    "Send a hedge when the first attempt has not answered by then",
  ),
  max_hedges: positiveInt(5).optional(),
});

/** The body of a policy, shared by named `policies` and a route's inline `policy`. */
export const policyFields = {
  timeout: duration({ min: 1, max: DAY }).optional().describe("Whole-request deadline, retries included"),
  retries: RetriesSchema.optional(),
  rate_limit: RateLimitSchema.optional(),
  circuit_breaker: CircuitBreakerSchema.optional(),
  hedging: HedgingSchema.optional(),
  body_size_limit: size().optional(),
  require_tls: z.boolean().optional(),
};

export const PolicySchema = strict({ id: id(), ...policyFields });
export const InlinePolicySchema = strict(policyFields);

// ---------------------------------------------------------------------------------------------
// Routes

const ValueMatchSchema = z.union([
  z.string().describe("Exact value"),
  strict({ prefix: z.string() }),
  strict({ regex: regex() }),
  strict({ present: z.boolean() }),
]);

export const RouteSchema = strict({
  id: id(),
  host: hostPattern().optional().describe("Exact, *.wildcard or anchored regex; absent matches any host"),
  path: routePath().optional().describe("Exact path"),
  path_prefix: routePath().optional(),
  path_regex: regex().optional(),
  methods: methodList().optional(),
  headers: headerMap(ValueMatchSchema).optional(),
  query: z.record(z.string().min(1), ValueMatchSchema).optional(),
  pool: id().optional(),
  policy: InlinePolicySchema.optional(),
  policy_ref: id().optional(),
  middleware: id().optional().describe("The middleware chain requests of this route run through"),
  require_tls: z.boolean().optional(),
  require_mtls: z.boolean().optional(),
});

// ---------------------------------------------------------------------------------------------
// Pools

export const EndpointSchema = strict({
  address: endpointAddress(),
  weight: positiveInt(10_000).optional(),
});

export const ActiveHealthSchema = strict({
  interval: duration({ min: 100, max: HOUR }),
  timeout: duration({ min: 1, max: HOUR }).optional(),
  path: z.string().startsWith("/").optional(),
  expected_status: statusRange().optional(),
  jitter: percent().optional().describe("Random spread of the interval, so agents do not probe in lockstep"),
  healthy_threshold: positiveInt(100).optional(),
  unhealthy_threshold: positiveInt(100).optional(),
});

export const PassiveHealthSchema = strict({
  consecutive_failures: positiveInt(1000),
  ejection_duration: duration({ min: 1, max: DAY }).optional(),
});

export const OutlierDetectionSchema = strict({
  consecutive_failures: positiveInt(1000).optional(),
  error_rate_threshold: percent().optional(),
  max_ejection_percent: percent().optional(),
  interval: duration({ min: 100, max: HOUR }).optional(),
  base_ejection_time: duration({ min: 1, max: DAY }).optional().describe("Grows with each repeated ejection"),
  min_requests: positiveInt().optional(),
});

export const UpstreamTlsSchema = strict({
  sni: z.string().min(1).optional(),
  ca_file: filePath().optional(),
  cert_file: filePath().optional(),
  key_file: filePath().optional(),
  verify: z.boolean().optional().describe("Verify the upstream's certificate (default true)"),
});

export const BALANCERS = ["round_robin", "weighted_round_robin", "least_request", "consistent_hash"] as const;

export const PoolSchema = strict({
  id: id(),
  endpoints: z.array(EndpointSchema).min(1, { error: "a pool needs at least one endpoint" }),
  balancer: z.enum(BALANCERS).optional(),
  hash_on: requestKey().optional().describe("consistent_hash key: header:NAME, cookie:NAME or client_ip"),
  protocol: z.enum(["http1", "h2"]).optional(),
  tls: UpstreamTlsSchema.optional(),
  connection_pool: strict({
    max_connections: positiveInt().optional(),
    connect_timeout: duration({ min: 1, max: HOUR }).optional(),
    idle_timeout: duration({ min: 1, max: DAY }).optional(),
  }).optional(),
  health: strict({
    active: ActiveHealthSchema.optional(),
    passive: PassiveHealthSchema.optional(),
  }).optional(),
  circuit_breaker: CircuitBreakerSchema.optional(),
  outlier_detection: OutlierDetectionSchema.optional(),
});

// ---------------------------------------------------------------------------------------------
// Middleware

const HeaderEditsSchema = strict({
  add: headerMap(z.string()).optional(),
  set: headerMap(z.string()).optional(),
  remove: z.array(headerName()).optional(),
});

export const JwtSchema = strict({
  issuer: z.string().min(1),
  audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
  jwks_uri: urlString().optional(),
  jwks_file: filePath().optional(),
  algorithms: z
    .array(z.enum(["EdDSA", "ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]))
    .min(1)
    .optional(),
  clock_skew: duration({ max: HOUR }).optional(),
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
  strict({ type: z.literal("request_id"), config: strict({ header: headerName().optional() }).optional() }),
  strict({ type: z.literal("auth"), config: strict({ jwt: JwtSchema }) }),
  strict({
    type: z.literal("rate_limit"),
    policy_ref: id().describe("The policy whose rate_limit applies"),
    config: strict({ key: requestKey().optional() }).optional(),
  }),
  strict({
    type: z.literal("header_transform"),
    config: strict({ ...HeaderEditsSchema.shape, response: HeaderEditsSchema.optional() }),
  }),
  strict({ type: z.literal("tracing") }),
  strict({ type: z.literal("access_log") }),
  strict({ type: z.literal("plugin"), plugin: id().describe("The id of an entry in plugins") }),
]);

export const MiddlewareChainSchema = strict({
  id: id(),
  stages: z.array(StageSchema).min(1, { error: "a middleware chain needs at least one stage" }),
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
  max_concurrent: positiveInt(),
  queue_size: nonNegativeInt().optional(),
  queue_timeout: duration({ min: 1, max: HOUR }).optional(),
  adaptive: z.boolean().optional().describe("Adjust the limit from observed latency (gradient)"),
  min_concurrent: positiveInt().optional(),
});

export const SafetyBrakeSchema = strict({
  error_rate_margin: percent().describe("Brake when canary error % exceeds stable's by this many points"),
  window: duration({ min: 1000, max: HOUR }).optional(),
  min_requests: positiveInt().optional(),
});

export const TrafficPlanSchema = strict({
  route: id(),
  stable_pool: id().optional(),
  canary_pool: id().optional(),
  canary_weight: percent().optional(),
  safety_brake: SafetyBrakeSchema.optional(),
  cohort_routing: CohortRoutingSchema.optional(),
  overload_protection: OverloadProtectionSchema.optional(),
});

// ---------------------------------------------------------------------------------------------
// Cache

export const CacheSchema = strict({
  route: id(),
  enabled: z.boolean().optional(),
  ttl: duration({ min: 1, max: 365 * DAY }).optional(),
  vary_headers: z.array(headerName()).optional(),
  max_size: size({ min: 1 }).optional(),
  max_entry_size: size({ min: 1 }).optional(),
  auth_aware: z.boolean().optional(),
  coalesce: z.boolean().optional(),
  coalesce_timeout: duration({ min: 1, max: HOUR }).optional(),
});

// ---------------------------------------------------------------------------------------------
// Plugins

const FAIL_MODE = z.enum(["open", "closed"]).describe("On timeout or crash: continue (open) or 503 (closed)");

export const PluginSchema = z.discriminatedUnion("type", [
  strict({
    id: id(),
    type: z.literal("external_grpc"),
    address: endpointAddress(),
    timeout: duration({ min: 1, max: 60_000 }).optional(),
    fail_mode: FAIL_MODE.optional(),
    tls: UpstreamTlsSchema.optional(),
  }),
  strict({
    id: id(),
    type: z.literal("builtin"),
    name: z.enum(["structured_logger"]),
    fail_mode: FAIL_MODE.optional(),
    config: strict({
      headers: z.array(headerName()).optional().describe("Request headers whose values each line carries"),
    }).optional(),
  }),
]);

// ---------------------------------------------------------------------------------------------
// TLS

export const CertificateSchema = strict({
  cert_file: filePath(),
  key_file: filePath(),
  sni: z
    .union([hostPattern(), z.array(hostPattern()).min(1)])
    .optional()
    .describe("Names served with this certificate; absent: the default certificate"),
});

export const TlsSchema = strict({
  certificates: z.array(CertificateSchema).optional(),
  mtls: strict({
    enabled: z.boolean().optional(),
    ca_file: filePath().optional(),
    require_client_cert: z.boolean().optional(),
  }).optional(),
  min_version: z.enum(["TLSv1.2", "TLSv1.3"]).optional(),
});

// ---------------------------------------------------------------------------------------------
// Rollout plan

export const RolloutStageSchema = strict({
  name: z.string().min(1),
  fleet_percent: percent(),
  bake_time: duration({ max: 7 * DAY }).optional(),
  min_requests: nonNegativeInt()
    .optional()
    .describe("Candidate requests needed before the stage can promote"),
});

export const HealthGateSchema = z.discriminatedUnion("metric", [
  strict({
    metric: z.literal("error_rate"),
    threshold: ratio().optional().describe("Absolute: 0.01 or 1%"),
    relative_to_stable: z.number().min(1).optional().describe("At most this multiple of the stable cohort's"),
  }),
  strict({
    metric: z.literal("p95_latency"),
    threshold: duration({ min: 1, max: HOUR }).optional(),
    relative_to_stable: z.number().min(1).optional(),
  }),
]);

export const RolloutSchema = strict({
  stages: z.array(RolloutStageSchema).min(1),
  health_gates: z.array(HealthGateSchema).optional(),
  auto_rollback: strict({
    error_budget_burn_rate: burnRate(),
    slo: strict({
      objective: percent().describe("Availability objective, e.g. 99.9"),
      short_window: duration({ min: 1000, max: 7 * DAY }).optional(),
      long_window: duration({ min: 1000, max: 30 * DAY }).optional(),
    }).optional(),
  }).optional(),
  min_requests: nonNegativeInt().optional(),
});

// ---------------------------------------------------------------------------------------------
// The whole document

export const DynamicConfigSchema = strict({
  version: z.literal("v1", { error: 'the config format version is "v1"' }).optional(),
  signature: z.string().optional().describe("Accepted for compatibility; bundles carry their own signature"),
  listeners: z.array(ListenerSchema).optional(),
  routes: z.array(RouteSchema).optional(),
  pools: z.array(PoolSchema).optional(),
  policies: z.array(PolicySchema).optional(),
  middleware: z.array(MiddlewareChainSchema).optional(),
  traffic_management: z.array(TrafficPlanSchema).optional(),
  cache: z.array(CacheSchema).optional(),
  plugins: z.array(PluginSchema).optional(),
  tls: TlsSchema.optional(),
  certificates: z.array(CertificateSchema).optional().describe("Same as tls.certificates"),
  rollout: RolloutSchema.optional(),
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
