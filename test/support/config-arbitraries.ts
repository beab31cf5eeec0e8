/**
 * fast-check arbitraries for dynamic configs as an operator writes them: every id unique,
 * every reference resolving, every cross-field rule of ../../services/config/semantics.ts
 * respected, so `validateDynamicConfig` accepts each one.
 *
 * A config is generated in two steps. The *model* is the config with its notation-bearing
 * values (durations, sizes, percentages, status ranges, header names, hosts, …) held as leaf
 * markers that know their canonical value. `renderConfig` then writes a model out the way a
 * person might: each marker in one of its equivalent notations ("90s", "1m30s", 90000,
 * "90000ms"; "1MB", "1024KB", 1048576; "10%", 10; "X-User", "x-user"), and, as asked, object
 * keys in any order, unordered lists (pools, policies, endpoints, …) in any order, and
 * meaning-free extras (`version: v1`, a legacy `signature`, empty or null sections, some
 * certificates under the spec's top-level `certificates`). Two renderings of one model mean
 * the same config, so they must validate to the same canonical value and content hash.
 *
 * Mutations (`mutationArb`, `applyMutations`) turn a model into another valid model the way
 * an operator edits a config: change a timeout, add or remove a route, a pool or an
 * endpoint, reorder routes, switch a pool's balancer.
 */
import fc from "fast-check";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const KIB = 1024;
const MIB = 1024 ** 2;
const GIB = 1024 ** 3;

// ---------------------------------------------------------------------------------------------
// Leaf markers: a value with several written notations and one canonical meaning.

/** A duration; canonical: milliseconds. */
export class Duration {
  constructor(readonly ms: number) {}
}

/** A size; canonical: bytes. */
export class Size {
  constructor(readonly bytes: number) {}
}

/** A percentage; canonical: percent points (10 for "10%"). */
export class Percent {
  constructor(readonly points: number) {}
}

/** A ratio written as a fraction or a percentage; canonical: the fraction (points / 100). */
export class Ratio {
  constructor(readonly points: number) {}
}

/** A burn rate: 10, "10x"; canonical: the number. */
export class BurnRate {
  constructor(readonly value: number) {}
}

/** An HTTP status range; canonical: {min, max}. */
export class StatusRange {
  constructor(
    readonly min: number,
    readonly max: number,
  ) {}
}

/** An HTTP header name; canonical: lowercase. `name` is stored lowercase. */
export class HeaderName {
  constructor(readonly name: string) {}
}

/** A route or SNI host pattern; exact and wildcard names are case-insensitive. */
export class HostPattern {
  constructor(readonly pattern: string) {}
}

/** client_ip, header:NAME (name case-insensitive) or cookie:NAME (case-sensitive). */
export class RequestKey {
  constructor(
    readonly kind: "client_ip" | "header" | "cookie",
    readonly name: string = "",
  ) {}
}

/** A set of HTTP methods; canonical: uppercase, sorted, without repeats. */
export class Methods {
  constructor(readonly methods: readonly string[]) {}
}

/** A map keyed by header name (keys stored lowercase); written with keys in any case. */
export class HeaderMap {
  constructor(readonly entries: Readonly<Record<string, unknown>>) {}
}

type Marker =
  | Duration
  | Size
  | Percent
  | Ratio
  | BurnRate
  | StatusRange
  | HeaderName
  | HostPattern
  | RequestKey
  | Methods
  | HeaderMap;

const MARKERS = [
  Duration,
  Size,
  Percent,
  Ratio,
  BurnRate,
  StatusRange,
  HeaderName,
  HostPattern,
  RequestKey,
  Methods,
  HeaderMap,
];

function isMarker(value: unknown): value is Marker {
  return MARKERS.some((marker) => value instanceof marker);
}

/** A config model: plain objects and arrays whose notation-bearing leaves are markers. */
export type Rec = Record<string, unknown>;
export type ConfigModel = Rec;

function isRec(value: unknown): value is Rec {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !isMarker(value);
}

/** A deep copy that keeps markers (immutable) as they are. */
export function cloneModel<T>(value: T): T {
  if (Array.isArray(value)) return value.map((item) => cloneModel(item)) as T;
  if (isRec(value)) {
    const out: Rec = {};
    for (const [key, item] of Object.entries(value)) out[key] = cloneModel(item);
    return out as T;
  }
  return value;
}

// ---------------------------------------------------------------------------------------------
// Small building blocks

const WORDS = [
  "api",
  "web",
  "auth",
  "billing",
  "search",
  "static",
  "admin",
  "cart",
  "edge",
  "core",
  "eu",
  "v2",
];

/** Ids as people write them ("api-route", "Billing_v2", "eu.west-1") and odd but valid ones. */
export const idArb: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc
      .tuple(
        fc.constantFrom(...WORDS),
        fc.constantFrom("", "-route", "-pool", "_v2", ".svc", "-1", "2", "-API"),
      )
      .map(([w, s]) => w + s),
  },
  { weight: 2, arbitrary: fc.stringMatching(/^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,12}[A-Za-z0-9])?$/) },
);

const labelArb = fc.oneof(
  fc.constantFrom("api", "www", "auth", "img", "shop", "eu", "internal", "svc1"),
  fc.stringMatching(/^[a-z][a-z0-9-]{0,6}[a-z0-9]$/),
);
const domainArb = fc
  .tuple(
    fc.array(labelArb, { minLength: 1, maxLength: 2 }),
    fc.constantFrom("example.com", "corp.io", "test"),
  )
  .map(([labels, tld]) => [...labels, tld].join("."));

const safeRegexArb = fc.constantFrom("^v[0-9]+$", "^(alpha|beta)$", "[a-z]+", "^[A-Z]{2}$", "mobile", "^$");

/** Header names, stored lowercase; rendered in any case. */
export const headerNameArb: fc.Arbitrary<HeaderName> = fc
  .oneof(
    fc.constantFrom(
      "x-user-id",
      "x-request-id",
      "authorization",
      "x-api-version",
      "accept",
      "accept-language",
      "x-tenant",
      "x-canary",
      "user-agent",
      "x-forwarded-for",
    ),
    fc.stringMatching(/^x-[a-z][a-z0-9-]{0,8}[a-z0-9]$/),
  )
  .map((name) => new HeaderName(name));

const cookieNameArb = fc.constantFrom("session", "Beta_Opt_In", "cohort", "SID");

export const requestKeyArb: fc.Arbitrary<RequestKey> = fc.oneof(
  fc.constant(new RequestKey("client_ip")),
  headerNameArb.map((h) => new RequestKey("header", h.name)),
  cookieNameArb.map((c) => new RequestKey("cookie", c)),
);

/** Integers in [min, max] biased toward round multiples of the given units. */
function roundish(min: number, max: number, units: readonly number[]): fc.Arbitrary<number> {
  const arbs = [1, ...units]
    .filter((unit) => Math.ceil(min / unit) <= Math.floor(max / unit))
    .map((unit) =>
      fc.integer({ min: Math.ceil(min / unit), max: Math.floor(max / unit) }).map((n) => n * unit),
    );
  return fc.oneof(...arbs);
}

export function durationArb(min: number, max: number): fc.Arbitrary<Duration> {
  return roundish(min, max, [100, 1000, 60_000, HOUR]).map((ms) => new Duration(ms));
}

export function sizeArb(min = 0, max = 4 * GIB): fc.Arbitrary<Size> {
  return roundish(min, max, [512, KIB, 64 * KIB, MIB, GIB]).map((bytes) => new Size(bytes));
}

/** Whole, half and tenth percentages between min and max points. */
export function percentArb(min = 0, max = 100): fc.Arbitrary<Percent> {
  return fc
    .oneof(
      fc.integer({ min, max }),
      fc.integer({ min: min * 2, max: max * 2 }).map((n) => n / 2),
      fc.integer({ min: min * 10, max: max * 10 }).map((n) => n / 10),
    )
    .map((points) => new Percent(points));
}

const ratioArb = fc
  .oneof(
    fc.integer({ min: 0, max: 100 }),
    fc.integer({ min: 0, max: 200 }).map((n) => n / 2),
  )
  .map((points) => new Ratio(points));

const burnRateArb = fc
  .oneof(
    fc.integer({ min: 1, max: 100 }),
    fc.integer({ min: 1, max: 40 }).map((n) => n / 2),
  )
  .map((value) => new BurnRate(value));

const statusRangeArb: fc.Arbitrary<StatusRange> = fc.oneof(
  fc.integer({ min: 100, max: 599 }).map((s) => new StatusRange(s, s)),
  fc.integer({ min: 1, max: 5 }).map((c) => new StatusRange(c * 100, c * 100 + 99)),
  fc
    .tuple(fc.integer({ min: 100, max: 599 }), fc.integer({ min: 100, max: 599 }))
    .map(([a, b]) => new StatusRange(Math.min(a, b), Math.max(a, b))),
);

export const hostPatternArb: fc.Arbitrary<HostPattern> = fc.oneof(
  { weight: 3, arbitrary: domainArb.map((d) => new HostPattern(d)) },
  { weight: 1, arbitrary: domainArb.map((d) => new HostPattern(`${d}:8443`)) },
  { weight: 2, arbitrary: domainArb.map((d) => new HostPattern(`*.${d}`)) },
  { weight: 1, arbitrary: fc.constant(new HostPattern("*")) },
  { weight: 1, arbitrary: fc.constant(new HostPattern("10.0.0.1")) },
  {
    weight: 1,
    arbitrary: labelArb.map((l) => new HostPattern(`^${l}[0-9]*\\.example\\.com$`)),
  },
);

/** Exact or wildcard names only, for certificate SNI. */
const sniArb: fc.Arbitrary<HostPattern> = fc.oneof(
  domainArb.map((d) => new HostPattern(d)),
  domainArb.map((d) => new HostPattern(`*.${d}`)),
);

const METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"];
const methodsArb = fc
  .subarray(METHODS, { minLength: 1, maxLength: 4 })
  .map((methods) => new Methods([...methods].sort()));

const textArb = fc.oneof(
  fc.constantFrom("prod", "staging", "v1", "true", "null", "42", "a: b", "#x", "- item", "", " padded "),
  fc.string({ maxLength: 12 }),
);

function headerMapArb(value: fc.Arbitrary<unknown>, maxKeys = 3): fc.Arbitrary<HeaderMap> {
  return fc
    .uniqueArray(fc.tuple(headerNameArb, value), { maxLength: maxKeys, selector: ([h]) => h.name })
    .map((entries) => new HeaderMap(Object.fromEntries(entries.map(([h, v]) => [h.name, v]))));
}

const valueMatchArb: fc.Arbitrary<unknown> = fc.oneof(
  textArb,
  textArb.map((prefix) => ({ prefix })),
  safeRegexArb.map((regex) => ({ regex })),
  fc.boolean().map((present) => ({ present })),
);

const queryArb = fc.dictionary(fc.constantFrom("version", "debug", "lang", "Region", "x"), valueMatchArb, {
  maxKeys: 2,
  noNullPrototype: true,
});

const endpointAddressArb = fc.oneof(
  fc
    .tuple(
      fc.integer({ min: 0, max: 3 }),
      fc.integer({ min: 1, max: 30 }),
      fc.constantFrom(80, 8000, 8080, 9000),
    )
    .map(([c, d, port]) => `10.0.${c}.${d}:${port}`),
  fc.tuple(labelArb, fc.constantFrom(80, 8000, 8443)).map(([l, port]) => `${l}.internal:${port}`),
  fc.constantFrom("[::1]:8080", "[fd00::10]:8000", "localhost:3000"),
);

const filePathArb = fc.constantFrom(
  "/etc/ca.pem",
  "/etc/coherent/ca-bundle.crt",
  "ca.pem",
  "/run/secrets/ca",
);

// ---------------------------------------------------------------------------------------------
// Sections

const circuitBreakerArb = fc.record(
  {
    error_threshold_percent: percentArb(),
    min_requests: fc.integer({ min: 1, max: 1000 }),
    open_duration: durationArb(1, DAY),
    window: durationArb(100, HOUR),
    half_open_requests: fc.integer({ min: 1, max: 1000 }),
    max_concurrent_requests: fc.integer({ min: 1, max: 100_000 }),
    max_pending_requests: fc.integer({ min: 0, max: 100_000 }),
  },
  { requiredKeys: [] },
);

const policyBodyArb: fc.Arbitrary<Rec> = fc
  .record(
    {
      timeout: durationArb(1, DAY),
      retries: fc.record(
        {
          max_attempts: fc.integer({ min: 1, max: 10 }),
          budget_percent: percentArb(),
          idempotent_only: fc.boolean(),
          backoff: fc
            .tuple(durationArb(1, HOUR), durationArb(1, HOUR))
            .map(([a, b]) => (a.ms <= b.ms ? { base: a, max: b } : { base: b, max: a })),
        },
        { requiredKeys: ["max_attempts"] },
      ),
      rate_limit: fc.record(
        {
          requests_per_second: fc.oneof(
            fc.integer({ min: 1, max: 100_000 }),
            fc.double({ min: 0.001, max: 1e6, noNaN: true, noDefaultInfinity: true }),
          ),
          burst: fc.integer({ min: 1, max: 10_000 }),
          key: requestKeyArb,
        },
        { requiredKeys: ["requests_per_second"] },
      ),
      circuit_breaker: circuitBreakerArb,
      hedging: fc.record(
        { delay: durationArb(1, HOUR), max_hedges: fc.integer({ min: 1, max: 5 }) },
        { requiredKeys: ["delay"] },
      ),
      body_size_limit: sizeArb(),
      require_tls: fc.boolean(),
    },
    { requiredKeys: [] },
  )
  .map((policy) => {
    // The hedging delay must be shorter than the timeout.
    const { hedging, timeout } = policy;
    if (hedging && timeout && hedging.delay.ms >= timeout.ms) {
      return { ...policy, timeout: new Duration(hedging.delay.ms + 1000) };
    }
    return policy;
  });

function poolArb(id: string): fc.Arbitrary<Rec> {
  return fc
    .record(
      {
        endpoints: fc.uniqueArray(
          fc.record(
            { address: endpointAddressArb, weight: fc.integer({ min: 1, max: 10_000 }) },
            { requiredKeys: ["address"] },
          ),
          { minLength: 1, maxLength: 4, selector: (e) => e.address },
        ),
        balancer: fc.constantFrom("round_robin", "weighted_round_robin", "least_request", "consistent_hash"),
        hash_on: requestKeyArb,
        protocol: fc.constantFrom("http1", "h2"),
        tls: fc.record(
          {
            sni: fc.constantFrom("api.internal", "Upstream.Example.com"),
            ca_file: filePathArb,
            client_cert: fc.constant(true),
            verify: fc.boolean(),
          },
          { requiredKeys: [] },
        ),
        connection_pool: fc.record(
          {
            max_connections: fc.integer({ min: 1, max: 10_000 }),
            connect_timeout: durationArb(1, HOUR),
            idle_timeout: durationArb(1, DAY),
          },
          { requiredKeys: [] },
        ),
        health: fc.record(
          {
            active: fc
              .record(
                {
                  interval: durationArb(100, HOUR),
                  timeout: durationArb(1, HOUR),
                  path: fc.constantFrom("/healthz", "/ready", "/"),
                  expected_status: statusRangeArb,
                  jitter: percentArb(),
                  healthy_threshold: fc.integer({ min: 1, max: 100 }),
                  unhealthy_threshold: fc.integer({ min: 1, max: 100 }),
                },
                { requiredKeys: ["interval"] },
              )
              .map((active) => {
                // The probe timeout must be shorter than its interval.
                if (active.timeout && active.timeout.ms >= active.interval.ms) {
                  const { timeout: _timeout, ...rest } = active;
                  return rest;
                }
                return active;
              }),
            passive: fc.record(
              {
                consecutive_failures: fc.integer({ min: 1, max: 1000 }),
                ejection_duration: durationArb(1, DAY),
              },
              { requiredKeys: ["consecutive_failures"] },
            ),
          },
          { requiredKeys: [] },
        ),
        circuit_breaker: circuitBreakerArb,
        outlier_detection: fc.record(
          {
            consecutive_failures: fc.integer({ min: 1, max: 1000 }),
            error_rate_threshold: percentArb(),
            max_ejection_percent: percentArb(),
            interval: durationArb(100, HOUR),
            base_ejection_time: durationArb(1, DAY),
            min_requests: fc.integer({ min: 1, max: 1000 }),
          },
          { requiredKeys: [] },
        ),
      },
      { requiredKeys: ["endpoints"] },
    )
    .map(({ hash_on, balancer, tls, ...pool }) => {
      const out: Rec = { id, ...pool };
      if (balancer !== undefined) out.balancer = balancer;
      // hash_on goes with consistent_hash, and consistent_hash needs it.
      if (balancer === "consistent_hash") out.hash_on = hash_on ?? new RequestKey("client_ip");
      if (tls) {
        const { client_cert, ...rest } = tls;
        // A client certificate needs both files.
        out.tls = client_cert
          ? { ...rest, cert_file: `/etc/certs/${id}.pem`, key_file: `/etc/certs/${id}.key` }
          : rest;
      }
      return out;
    });
}

function pluginArb(id: string): fc.Arbitrary<Rec> {
  const failMode = fc.constantFrom("open", "closed");
  return fc.oneof(
    fc
      .record(
        {
          address: endpointAddressArb,
          timeout: durationArb(1, 60_000),
          fail_mode: failMode,
          tls: fc.record({ sni: fc.constant("authz.internal"), verify: fc.boolean() }, { requiredKeys: [] }),
        },
        { requiredKeys: ["address"] },
      )
      .map((p) => ({ id, type: "external_grpc", ...p })),
    fc
      .record(
        {
          fail_mode: failMode,
          config: fc.record({ headers: fc.array(headerNameArb, { maxLength: 3 }) }, { requiredKeys: [] }),
        },
        { requiredKeys: [] },
      )
      .map((p) => ({ id, type: "builtin", name: "structured_logger", ...p })),
  );
}

const headerEditsArb = fc.record(
  {
    add: headerMapArb(textArb),
    set: headerMapArb(textArb),
    remove: fc.array(headerNameArb, { maxLength: 3 }),
  },
  { requiredKeys: [] },
);

const jwtArb = fc
  .record(
    {
      issuer: fc.constantFrom("https://issuer.example.com", "coherent", "auth0"),
      audience: fc.oneof(
        fc.constantFrom("api", "web"),
        fc.uniqueArray(fc.constantFrom("api", "web", "admin"), { minLength: 1 }),
      ),
      jwks: fc.oneof(
        fc.constant({ jwks_uri: "https://issuer.example.com/.well-known/jwks.json" }),
        fc.constant({ jwks_file: "/etc/jwks.json" }),
      ),
      algorithms: fc.subarray(["EdDSA", "ES256", "RS256", "PS512"], { minLength: 1 }),
      clock_skew: durationArb(0, HOUR),
      forward_claims: fc.dictionary(fc.constantFrom("sub", "email", "tenant"), headerNameArb, {
        maxKeys: 2,
        noNullPrototype: true,
      }),
    },
    { requiredKeys: ["issuer", "jwks"] },
  )
  .map(({ jwks, ...jwt }) => ({ ...jwt, ...jwks }));

function chainArb(id: string, policyIds: readonly string[], pluginIds: readonly string[]): fc.Arbitrary<Rec> {
  const single: fc.Arbitrary<Rec>[] = [
    fc
      .record({ header: headerNameArb }, { requiredKeys: [] })
      .chain((config) => fc.constantFrom({ type: "request_id" }, { type: "request_id", config })),
    jwtArb.map((jwt) => ({ type: "auth", config: { jwt } })),
    fc.constant({ type: "tracing" }),
    fc.constant({ type: "access_log" }),
  ];
  const repeatable: fc.Arbitrary<Rec>[] = [
    fc
      .record({ edits: headerEditsArb, response: fc.option(headerEditsArb, { nil: undefined }) })
      .map(({ edits, response }) => ({
        type: "header_transform",
        config: response ? { ...edits, response } : edits,
      })),
  ];
  if (policyIds.length > 0) {
    repeatable.push(
      fc
        .record(
          {
            policy_ref: fc.constantFrom(...policyIds),
            config: fc.record({ key: requestKeyArb }, { requiredKeys: [] }),
          },
          { requiredKeys: ["policy_ref"] },
        )
        .map((stage) => ({ type: "rate_limit", ...stage })),
    );
  }
  if (pluginIds.length > 0) {
    repeatable.push(fc.constantFrom(...pluginIds).map((plugin) => ({ type: "plugin", plugin })));
  }
  return fc
    .tuple(
      fc
        .subarray([0, 1, 2, 3])
        .chain((picked) => fc.tuple(...picked.map((i) => single[i] as fc.Arbitrary<Rec>))),
      fc.array(fc.oneof(...repeatable), { maxLength: 3 }),
    )
    .chain(([ones, many]) => {
      const stages = [...ones, ...many];
      return stages.length > 0
        ? fc.shuffledSubarray(stages, { minLength: stages.length })
        : fc.oneof(...single, ...repeatable).map((stage) => [stage]);
    })
    .map((stages) => ({ id, stages }));
}

interface Ids {
  readonly pools: readonly string[];
  readonly routes: readonly string[];
  readonly policies: readonly string[];
  readonly plugins: readonly string[];
  readonly chains: readonly string[];
  readonly mtls: boolean;
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function routeArb(id: string, ids: Ids): fc.Arbitrary<Rec> {
  const policyChoice: fc.Arbitrary<Rec>[] = [fc.constant({}), policyBodyArb.map((policy) => ({ policy }))];
  if (ids.policies.length > 0)
    policyChoice.push(fc.constantFrom(...ids.policies).map((policy_ref) => ({ policy_ref })));
  // Each route's path names its own id, so no two routes ever match the same requests.
  const matchArb = fc.constantFrom(
    { path: `/${id}` },
    { path_prefix: `/${id}/` },
    { path_regex: `^/${escapeRegex(id)}/[a-z0-9]+$` },
  );
  return fc
    .record(
      {
        match: matchArb,
        host: hostPatternArb,
        methods: methodsArb,
        headers: headerMapArb(valueMatchArb, 2),
        query: queryArb,
        pool: fc.constantFrom(...ids.pools),
        policy: fc.oneof(...policyChoice),
        middleware: ids.chains.length > 0 ? fc.constantFrom(...ids.chains) : fc.constant(undefined),
        require_tls: fc.boolean(),
        require_mtls: fc.constant(ids.mtls ? true : undefined),
      },
      { requiredKeys: ["match", "pool", "policy"] },
    )
    .map(({ match, policy, ...rest }) => {
      const route: Rec = { id, ...match };
      for (const [key, value] of Object.entries(rest)) if (value !== undefined) route[key] = value;
      return { ...route, ...policy };
    });
}

function trafficPlanArb(route: string, ids: Ids): fc.Arbitrary<Rec> {
  const pool = fc.constantFrom(...ids.pools);
  const cohortArb = fc.oneof(
    fc
      .record({
        by: fc.oneof(
          headerNameArb.map((header) => ({ header })),
          cookieNameArb.map((cookie) => ({ cookie })),
        ),
        mappings: fc.dictionary(fc.constantFrom("beta", "internal", "eu", "1", "Canary"), pool, {
          maxKeys: 3,
          noNullPrototype: true,
        }),
      })
      .map(({ by, mappings }) => ({ ...by, mappings })),
    fc
      .record({
        hash_on: requestKeyArb,
        weights: fc.uniqueArray(fc.tuple(pool, fc.integer({ min: 1, max: 10_000 })), {
          minLength: 1,
          selector: ([p]) => p,
        }),
      })
      .map(({ hash_on, weights }) => ({ hash_on, weights: Object.fromEntries(weights) })),
  );
  return fc
    .record(
      {
        stable_pool: pool,
        canary_pool: pool,
        canary_weight: percentArb(),
        safety_brake: fc.record(
          {
            error_rate_margin: percentArb(),
            window: durationArb(1000, HOUR),
            min_requests: fc.integer({ min: 1, max: 10_000 }),
          },
          { requiredKeys: ["error_rate_margin"] },
        ),
        cohort_routing: cohortArb,
        overload_protection: fc
          .record(
            {
              max_concurrent: fc.integer({ min: 1, max: 10_000 }),
              queue_size: fc.integer({ min: 0, max: 10_000 }),
              queue_timeout: durationArb(1, HOUR),
              adaptive: fc.boolean(),
              min_concurrent: fc.integer({ min: 1, max: 10_000 }),
            },
            { requiredKeys: ["max_concurrent"] },
          )
          .map((o) =>
            o.min_concurrent !== undefined && o.min_concurrent > o.max_concurrent
              ? { ...o, min_concurrent: o.max_concurrent }
              : o,
          ),
      },
      { requiredKeys: [] },
    )
    .map((plan) => {
      const out: Rec = { route, ...plan };
      // A canary needs a stable pool to split from, and a different one.
      if (
        plan.canary_pool === undefined ||
        plan.stable_pool === undefined ||
        plan.canary_pool === plan.stable_pool
      ) {
        delete out.canary_pool;
        delete out.canary_weight;
        delete out.safety_brake;
      }
      return out;
    });
}

const cacheRuleArb = (route: string) =>
  fc
    .record(
      {
        enabled: fc.boolean(),
        ttl: durationArb(1, 365 * DAY),
        vary_headers: fc.array(headerNameArb, { maxLength: 3 }),
        max_size: sizeArb(1),
        max_entry_size: sizeArb(1, 64 * MIB),
        auth_aware: fc.boolean(),
        coalesce: fc.boolean(),
        coalesce_timeout: durationArb(1, HOUR),
      },
      { requiredKeys: [] },
    )
    .map((rule) => ({ route, ...rule }));

const listenerArb = fc
  .record(
    {
      address: fc.constantFrom(":8080", ":80", "0.0.0.0:8443", "127.0.0.1:9000", "[::]:8443", ":0"),
      protocol: fc.constantFrom("http", "https"),
      http2: fc.boolean(),
      read_timeout: durationArb(0, DAY),
      write_timeout: durationArb(0, DAY),
      read_header_timeout: durationArb(0, HOUR),
      idle_timeout: durationArb(0, DAY),
      max_header_size: sizeArb(KIB, MIB),
    },
    { requiredKeys: ["address"] },
  )
  .map((listener) => {
    // http2 is negotiated by ALPN: https only.
    if (listener.http2 !== undefined && listener.protocol !== "https") {
      const { http2: _http2, ...rest } = listener;
      return rest;
    }
    return listener;
  });

const tlsArb = (mtls: boolean): fc.Arbitrary<Rec> =>
  fc
    .record(
      {
        certificates: fc.uniqueArray(
          fc.record(
            {
              name: fc.constantFrom("default", "api", "wild", "legacy", "eu", "admin"),
              sni: fc.oneof(sniArb, fc.array(sniArb, { minLength: 1, maxLength: 3 })),
            },
            { requiredKeys: ["name"] },
          ),
          { maxLength: 4, selector: (c) => c.name },
        ),
        mtls: fc.record({ require_client_cert: fc.boolean() }, { requiredKeys: [] }),
        min_version: fc.constantFrom("TLSv1.2", "TLSv1.3"),
      },
      { requiredKeys: [] },
    )
    .map(({ certificates, mtls: mtlsExtra, ...rest }) => {
      const tls: Rec = { ...rest };
      if (certificates) {
        // Each SNI name is served by one certificate, and there is one default at most.
        const taken = new Set<string>();
        tls.certificates = certificates.flatMap(({ name, sni }) => {
          const names = sni === undefined ? [] : Array.isArray(sni) ? sni : [sni];
          const keys = names.length === 0 ? ["(default)"] : names.map((n) => n.pattern);
          if (keys.some((k) => taken.has(k)) || new Set(keys).size !== keys.length) return [];
          for (const k of keys) taken.add(k);
          const cert: Rec = { cert_file: `/etc/certs/${name}.pem`, key_file: `/etc/certs/${name}.key` };
          if (sni !== undefined) cert.sni = sni;
          return [cert];
        });
      }
      if (mtls) tls.mtls = { enabled: true, ca_file: "/etc/certs/clients-ca.pem", ...mtlsExtra };
      else if (mtlsExtra) tls.mtls = { enabled: false, ...mtlsExtra };
      return tls;
    });

const stageNameArb = fc.constantFrom("canary", "one-region", "half", "all", "Stage 1", "pilot", "wave-2");

const rolloutArb: fc.Arbitrary<Rec> = fc
  .record(
    {
      percents: fc.uniqueArray(fc.integer({ min: 1, max: 99 }), { maxLength: 3 }),
      names: fc.uniqueArray(stageNameArb, { minLength: 4, maxLength: 4 }),
      stageExtras: fc.array(
        fc.record(
          { bake_time: durationArb(0, 7 * DAY), min_requests: fc.integer({ min: 0, max: 100_000 }) },
          { requiredKeys: [] },
        ),
        { minLength: 4, maxLength: 4 },
      ),
      health_gates: fc.subarray(["error_rate", "p95_latency"] as const, { minLength: 1 }).chain((metrics) =>
        fc.tuple(
          ...metrics.map((metric) =>
            fc
              .record(
                {
                  threshold: metric === "error_rate" ? ratioArb : durationArb(1, HOUR),
                  relative_to_stable: fc.oneof(fc.integer({ min: 1, max: 10 }), fc.constantFrom(1.5, 2.5)),
                },
                { requiredKeys: [] },
              )
              .map((gate) =>
                gate.threshold === undefined && gate.relative_to_stable === undefined
                  ? { metric, relative_to_stable: 2 }
                  : { metric, ...gate },
              ),
          ),
        ),
      ),
      auto_rollback: fc.record(
        {
          error_budget_burn_rate: burnRateArb,
          slo: fc
            .record(
              {
                objective: percentArb(90, 100),
                short_window: durationArb(1000, 7 * DAY),
                long_window: durationArb(1000, 30 * DAY),
              },
              { requiredKeys: ["objective"] },
            )
            .map((slo) =>
              slo.short_window && slo.long_window && slo.short_window.ms >= slo.long_window.ms
                ? { objective: slo.objective, long_window: slo.long_window }
                : slo,
            ),
        },
        { requiredKeys: ["error_budget_burn_rate"] },
      ),
      min_requests: fc.integer({ min: 0, max: 100_000 }),
      withGates: fc.boolean(),
    },
    { requiredKeys: ["percents", "names", "stageExtras", "health_gates", "withGates"] },
  )
  .map(({ percents, names, stageExtras, health_gates, withGates, ...rest }) => {
    // fleet_percent grows from stage to stage and the last stage reaches 100%.
    const stages = [...[...percents].sort((a, b) => a - b), 100].map((percent, i) => ({
      name: names[i] as string,
      fleet_percent: new Percent(percent),
      ...stageExtras[i],
    }));
    return withGates ? { stages, health_gates, ...rest } : { stages, ...rest };
  });

/**
 * A model of a valid dynamic config. Pools and routes are always present (1–4 pools, 1–5
 * routes); every other section is present or not.
 */
export function configModelArb(): fc.Arbitrary<ConfigModel> {
  const idsArb: fc.Arbitrary<Ids> = fc.record({
    pools: fc.uniqueArray(idArb, { minLength: 1, maxLength: 4 }),
    routes: fc.uniqueArray(idArb, { minLength: 1, maxLength: 5 }),
    policies: fc.uniqueArray(idArb, { maxLength: 3 }),
    plugins: fc.uniqueArray(idArb, { maxLength: 2 }),
    chains: fc.uniqueArray(idArb, { maxLength: 2 }),
    mtls: fc.boolean(),
  });
  return idsArb.chain((ids) =>
    fc
      .record(
        {
          routes: fc.tuple(...ids.routes.map((id) => routeArb(id, ids))),
          pools: fc.tuple(...ids.pools.map((id) => poolArb(id))),
          policies: fc.tuple(...ids.policies.map((id) => policyBodyArb.map((body) => ({ id, ...body })))),
          middleware: fc.tuple(...ids.chains.map((id) => chainArb(id, ids.policies, ids.plugins))),
          plugins: fc.tuple(...ids.plugins.map((id) => pluginArb(id))),
          traffic_management: fc
            .shuffledSubarray([...ids.routes], { maxLength: Math.min(3, ids.routes.length) })
            .chain((routes) => fc.tuple(...routes.map((route) => trafficPlanArb(route, ids)))),
          cache: fc
            .shuffledSubarray([...ids.routes], { maxLength: Math.min(2, ids.routes.length) })
            .chain((routes) => fc.tuple(...routes.map(cacheRuleArb))),
          listeners: fc.uniqueArray(listenerArb, { maxLength: 3, selector: (l) => l.address }),
          tls: tlsArb(ids.mtls),
          rollout: rolloutArb,
          dropPools: fc.boolean(),
          withTls: fc.boolean(),
          withRollout: fc.boolean(),
        },
        { requiredKeys: ["routes", "pools", "policies", "middleware", "plugins"] },
      )
      .map((sections) => assemble(sections, ids)),
  );
}

function assemble(generated: Rec, ids: Ids): ConfigModel {
  // fast-check reuses generated values while shrinking: fix up a copy, never the original.
  const sections = cloneModel(generated);
  const config: ConfigModel = {};
  const routes = (sections.routes ?? []) as Rec[];
  const plans = (sections.traffic_management ?? []) as Rec[];
  const policies = (sections.policies ?? []) as Rec[];
  const chains = (sections.middleware ?? []) as Rec[];

  // A route whose traffic plan has a stable pool may leave out its own pool.
  if (sections.dropPools) {
    const planned = new Set(plans.filter((p) => p.stable_pool !== undefined).map((p) => p.route));
    for (const route of routes) if (planned.has(route.id)) delete route.pool;
  }
  // A rate_limit stage names a policy that has a rate_limit.
  for (const chain of chains) {
    for (const stage of chain.stages as Rec[]) {
      if (stage.type !== "rate_limit") continue;
      const policy = policies.find((p) => p.id === stage.policy_ref);
      if (policy && policy.rate_limit === undefined) policy.rate_limit = { requests_per_second: 50 };
    }
  }
  // Chains referenced by routes must exist; routes only name generated chains, but a chain
  // list may be absent while ids were drawn.
  const chainIds = new Set(chains.map((c) => c.id));
  for (const route of routes)
    if (route.middleware !== undefined && !chainIds.has(route.middleware as string)) delete route.middleware;
  const policyIds = new Set(policies.map((p) => p.id));
  for (const route of routes)
    if (route.policy_ref !== undefined && !policyIds.has(route.policy_ref as string)) delete route.policy_ref;

  if (sections.listeners) config.listeners = sections.listeners;
  config.routes = routes;
  config.pools = sections.pools ?? [];
  if (policies.length > 0) config.policies = policies;
  if (chains.length > 0) config.middleware = chains;
  if (plans.length > 0) config.traffic_management = plans;
  if (sections.cache && (sections.cache as Rec[]).length > 0) config.cache = sections.cache;
  if (sections.plugins && (sections.plugins as Rec[]).length > 0) config.plugins = sections.plugins;
  // require_mtls needs tls.mtls.enabled.
  if (sections.withTls || ids.mtls) config.tls = sections.tls ?? tlsFallback(ids.mtls);
  if (sections.withRollout && sections.rollout) config.rollout = sections.rollout;
  return config;
}

function tlsFallback(mtls: boolean): Rec {
  return mtls ? { mtls: { enabled: true, ca_file: "/etc/certs/clients-ca.pem" } } : {};
}

// ---------------------------------------------------------------------------------------------
// Rendering: the model written out in one of its many equivalent forms

/** A uniform integer in [0, n). */
export type Rng = (n: number) => number;

/** A small seeded PRNG (mulberry32), so a rendering is reproducible from its seed. */
export function rngFrom(seed: number): Rng {
  let state = seed >>> 0;
  return (n) => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4_294_967_296) * n);
  };
}

function pick<T>(rng: Rng, options: readonly T[]): T {
  return options[rng(options.length)] as T;
}

function shuffle<T>(rng: Rng, items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = rng(i + 1);
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}

export interface RenderOptions {
  /** Write object keys in a random order (default true). */
  readonly shuffleKeys?: boolean;
  /** Write unordered lists (pools, policies, endpoints, …) and method sets in a random order (default true). */
  readonly shuffleLists?: boolean;
  /**
   * Add meaning-free extras: `version: v1`, a legacy `signature`, empty or null sections, and
   * some certificates moved to the top-level `certificates` (default true).
   */
  readonly extras?: boolean;
  /**
   * Also write durations as decimal fractions of a unit ("2.007s", "4.15m"). Exact
   * fractions such as "1.5s" and "0.25s" are always among the notations.
   */
  readonly decimalDurations?: boolean;
}

/** The lists whose order means nothing: the canonical form sorts them by key. */
const UNORDERED_LISTS = new Set([
  "listeners",
  "pools",
  "pools.*.endpoints",
  "policies",
  "middleware",
  "traffic_management",
  "cache",
  "plugins",
  "tls.certificates",
  "certificates",
  "rollout.health_gates",
]);

const LIST_SECTIONS = [
  "listeners",
  "routes",
  "pools",
  "policies",
  "middleware",
  "traffic_management",
  "cache",
  "plugins",
  "certificates",
];

/** Writes a model out as a config document (plain JSON data). */
export function renderConfig(model: ConfigModel, rng: Rng, options: RenderOptions = {}): Rec {
  const opts: Required<RenderOptions> = {
    shuffleKeys: options.shuffleKeys ?? true,
    shuffleLists: options.shuffleLists ?? true,
    extras: options.extras ?? true,
    decimalDurations: options.decimalDurations ?? false,
  };
  let doc = cloneModel(model);
  if (opts.extras) doc = addExtras(doc, rng);
  return renderValue(doc, [], rng, opts) as Rec;
}

function addExtras(doc: Rec, rng: Rng): Rec {
  const out: Rec = { ...doc };
  if (rng(2) === 0) out.version = "v1";
  if (rng(4) === 0) out.signature = pick(rng, ["", "legacy-signature", "eyJhbGciOiJFZERTQSJ9.."]);
  for (const section of [...LIST_SECTIONS, "rollout"]) {
    if (out[section] === undefined && rng(5) === 0) {
      out[section] = section === "rollout" || rng(2) === 0 ? null : [];
    }
  }
  const tls = out.tls as Rec | undefined;
  const certs = tls?.certificates as Rec[] | undefined;
  if (tls && certs && certs.length > 0 && rng(2) === 0) {
    // The spec's top-level `certificates` means the same as tls.certificates.
    const moved = certs.filter(() => rng(2) === 0);
    const kept = certs.filter((cert) => !moved.includes(cert));
    if (moved.length > 0) {
      out.certificates = moved;
      const rest: Rec = { ...tls, certificates: kept };
      if (kept.length === 0) delete rest.certificates;
      // With nothing else in it, the tls section may go as well.
      if (Object.keys(rest).length === 0) delete out.tls;
      else out.tls = rest;
    }
  }
  return out;
}

function renderValue(value: unknown, path: string[], rng: Rng, opts: Required<RenderOptions>): unknown {
  if (value instanceof Duration) return renderDuration(value.ms, rng, opts.decimalDurations);
  if (value instanceof Size) return renderSize(value.bytes, rng);
  if (value instanceof Percent) {
    const p = value.points;
    return pick(rng, [p, `${p}%`, `${p} %`, `${p}`]);
  }
  if (value instanceof Ratio) {
    return pick(rng, [value.points / 100, `${value.points / 100}`, `${value.points}%`]);
  }
  if (value instanceof BurnRate) return pick(rng, [value.value, `${value.value}x`, `${value.value}X`]);
  if (value instanceof StatusRange) return renderStatus(value, rng);
  if (value instanceof HeaderName) return caseVariant(value.name, rng);
  if (value instanceof HostPattern) {
    const { pattern } = value;
    return /[\\^$()[\]{}|+?]/.test(pattern) ? pattern : caseVariant(pattern, rng);
  }
  if (value instanceof RequestKey) {
    if (value.kind === "client_ip") return "client_ip";
    return value.kind === "header" ? `header:${caseVariant(value.name, rng)}` : `cookie:${value.name}`;
  }
  if (value instanceof Methods) {
    const written = value.methods.map((m) => caseVariant(m, rng));
    if (rng(4) === 0) written.push(caseVariant(pick(rng, value.methods), rng));
    return opts.shuffleLists ? shuffle(rng, written) : written;
  }
  if (value instanceof HeaderMap) {
    const entries = Object.entries(value.entries).map(
      ([name, item]) => [caseVariant(name, rng), renderValue(item, [...path, name], rng, opts)] as const,
    );
    return Object.fromEntries(opts.shuffleKeys ? shuffle(rng, entries) : entries);
  }
  if (Array.isArray(value)) {
    const items = value.map((item) => renderValue(item, [...path, "*"], rng, opts));
    return opts.shuffleLists && UNORDERED_LISTS.has(path.join(".")) ? shuffle(rng, items) : items;
  }
  if (isRec(value)) {
    const entries = Object.entries(value)
      .filter(([, item]) => item !== undefined)
      .map(([key, item]) => [key, renderValue(item, [...path, key], rng, opts)] as const);
    return Object.fromEntries(opts.shuffleKeys ? shuffle(rng, entries) : entries);
  }
  return value;
}

/** The ways to write `ms` milliseconds that mean exactly `ms`. */
export function durationNotations(ms: number, decimals = false): Array<string | number> {
  const forms: Array<string | number> = [ms, `${ms}ms`, `${ms * 1000}us`, compoundDuration(ms)];
  if (ms % 1000 === 0) forms.push(`${ms / 1000}s`);
  if (ms % 60_000 === 0) forms.push(`${ms / 60_000}m`);
  if (ms % HOUR === 0) forms.push(`${ms / HOUR}h`);
  // Fractions with a power-of-two denominator are exact in binary too: "1.5s", "0.125s".
  if (ms % 125 === 0 && ms % 1000 !== 0) forms.push(`${ms / 1000}s`);
  if (ms % 7500 === 0 && ms % 60_000 !== 0) forms.push(`${ms / 60_000}m`);
  if (ms === 0) forms.push("0", "0s");
  if (decimals) {
    if (ms % 1000 !== 0) forms.push(`${ms / 1000}s`);
    if (ms % 600 === 0 && ms % 60_000 !== 0) forms.push(`${ms / 60_000}m`);
    if (ms % 36_000 === 0 && ms % HOUR !== 0) forms.push(`${ms / HOUR}h`);
  }
  return forms;
}

/** 3723004 → "1h2m3s4ms"; 90000 → "1m30s". */
function compoundDuration(ms: number): string {
  if (ms === 0) return "0ms";
  const parts: string[] = [];
  let rest = ms;
  for (const [unit, size] of [
    ["h", HOUR],
    ["m", 60_000],
    ["s", 1000],
    ["ms", 1],
  ] as const) {
    const n = Math.floor(rest / size);
    if (n > 0) parts.push(`${n}${unit}`);
    rest -= n * size;
  }
  return parts.join("");
}

function renderDuration(ms: number, rng: Rng, decimals: boolean): string | number {
  if (decimals && rng(2) === 0) {
    // Prefer the decimal forms when they are asked for.
    const decimalForms = durationNotations(ms, true).filter((f) => typeof f === "string" && f.includes("."));
    if (decimalForms.length > 0) return pick(rng, decimalForms);
  }
  return pick(rng, durationNotations(ms, decimals));
}

/** The ways to write `bytes` that mean exactly `bytes`. */
export function sizeNotations(bytes: number): Array<string | number> {
  const forms: Array<string | number> = [bytes, `${bytes}`, `${bytes}B`, `${bytes} b`];
  for (const [units, size] of [
    [["KB", "KiB", "kb", "Kb"], KIB],
    [["MB", "MiB", "mb"], MIB],
    [["GB", "GiB", "gb"], GIB],
  ] as const) {
    // Multiples of size / 8 have an exact binary fraction: "1.5KB", "0.125MB".
    if (bytes > 0 && bytes % (size / 8) === 0) {
      for (const unit of units) forms.push(`${bytes / size}${unit}`);
      forms.push(`${bytes / size} ${units[0]}`);
    }
  }
  return forms;
}

function renderSize(bytes: number, rng: Rng): string | number {
  return pick(rng, sizeNotations(bytes));
}

function renderStatus({ min, max }: StatusRange, rng: Rng): unknown {
  const forms: unknown[] = [{ min, max }, `${min}-${max}`, `${min} - ${max}`];
  if (min === max) forms.push(min, `${min}`);
  if (min % 100 === 0 && max === min + 99) forms.push(`${min / 100}xx`, `${min / 100}XX`);
  return pick(rng, forms);
}

/** "x-user-id" → "x-user-id", "X-USER-ID", "X-User-Id" or a random mix. */
function caseVariant(text: string, rng: Rng): string {
  switch (rng(5)) {
    case 0:
      return text.toLowerCase();
    case 1:
      return text.toUpperCase();
    case 2:
      return text
        .toLowerCase()
        .replace(/(^|[-.*])([a-z])/g, (_, sep: string, c: string) => sep + c.toUpperCase());
    case 3:
      return [...text].map((c) => (rng(2) === 0 ? c.toLowerCase() : c.toUpperCase())).join("");
    default:
      return text;
  }
}

/** A model written out: a config document as a person might write it. */
export function writtenConfigArb(options: RenderOptions = {}): fc.Arbitrary<Rec> {
  return fc
    .tuple(configModelArb(), fc.integer())
    .map(([model, seed]) => renderConfig(model, rngFrom(seed), options));
}

// ---------------------------------------------------------------------------------------------
// Mutations: edits an operator makes, each leaving the config valid

export type Mutation =
  | { readonly kind: "change-timeout"; readonly at: number; readonly timeout: Duration }
  | { readonly kind: "add-route"; readonly at: number; readonly id: string; readonly pool: number }
  | { readonly kind: "remove-route"; readonly at: number }
  | { readonly kind: "add-endpoint"; readonly pool: number; readonly address: string }
  | { readonly kind: "remove-endpoint"; readonly pool: number; readonly at: number }
  | { readonly kind: "reorder-routes"; readonly order: readonly number[] }
  | {
      readonly kind: "change-balancer";
      readonly pool: number;
      readonly balancer: string;
      readonly key: RequestKey;
    }
  | { readonly kind: "add-pool"; readonly id: string; readonly address: string }
  | { readonly kind: "remove-pool"; readonly pool: number };

export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant("change-timeout" as const), at: fc.nat(), timeout: durationArb(1, DAY) }),
  fc.record({ kind: fc.constant("add-route" as const), at: fc.nat(), id: idArb, pool: fc.nat() }),
  fc.record({ kind: fc.constant("remove-route" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("add-endpoint" as const), pool: fc.nat(), address: endpointAddressArb }),
  fc.record({ kind: fc.constant("remove-endpoint" as const), pool: fc.nat(), at: fc.nat() }),
  fc.record({
    kind: fc.constant("reorder-routes" as const),
    order: fc.array(fc.nat(), { minLength: 6, maxLength: 6 }),
  }),
  fc.record({
    kind: fc.constant("change-balancer" as const),
    pool: fc.nat(),
    balancer: fc.constantFrom("round_robin", "weighted_round_robin", "least_request", "consistent_hash"),
    key: requestKeyArb,
  }),
  fc.record({ kind: fc.constant("add-pool" as const), id: idArb, address: endpointAddressArb }),
  fc.record({ kind: fc.constant("remove-pool" as const), pool: fc.nat() }),
);

/** Applies the mutations to a copy of the model; the result is still a valid config. */
export function applyMutations(model: ConfigModel, mutations: readonly Mutation[]): ConfigModel {
  const config = cloneModel(model);
  for (const mutation of mutations) mutate(config, mutation);
  return config;
}

function listOf(config: Rec, name: string): Rec[] {
  if (!Array.isArray(config[name])) config[name] = [];
  return config[name] as Rec[];
}

function freshId(wanted: string, taken: readonly unknown[]): string {
  let id = wanted;
  for (let n = 2; taken.includes(id); n++) id = `${wanted}-${n}`;
  return id;
}

function mutate(config: Rec, mutation: Mutation): void {
  const routes = listOf(config, "routes");
  const pools = listOf(config, "pools");
  switch (mutation.kind) {
    case "change-timeout": {
      // A route's inline policy or a named policy; a route without either gets an inline one.
      const targets: Rec[] = [
        ...routes.flatMap((r) => (r.policy ? [r.policy as Rec] : [])),
        ...(Array.isArray(config.policies) ? (config.policies as Rec[]) : []),
      ];
      const bare = routes.filter((r) => r.policy === undefined && r.policy_ref === undefined);
      const n = targets.length + bare.length;
      if (n === 0) return;
      const i = mutation.at % n;
      let target = targets[i];
      if (!target) {
        target = {};
        (bare[i - targets.length] as Rec).policy = target;
      }
      const hedging = target.hedging as { delay: Duration } | undefined;
      const ms =
        hedging && hedging.delay.ms >= mutation.timeout.ms ? hedging.delay.ms + 1 : mutation.timeout.ms;
      target.timeout = new Duration(ms);
      return;
    }
    case "add-route": {
      if (pools.length === 0) return;
      const id = freshId(
        mutation.id,
        routes.map((r) => r.id),
      );
      const route = { id, path: `/${id}`, pool: (pools[mutation.pool % pools.length] as Rec).id };
      routes.splice(mutation.at % (routes.length + 1), 0, route);
      return;
    }
    case "remove-route": {
      if (routes.length === 0) return;
      const [removed] = routes.splice(mutation.at % routes.length, 1);
      // Traffic plans and cache rules name their route.
      for (const section of ["traffic_management", "cache"]) {
        if (Array.isArray(config[section])) {
          config[section] = (config[section] as Rec[]).filter((entry) => entry.route !== removed?.id);
        }
      }
      return;
    }
    case "add-endpoint": {
      if (pools.length === 0) return;
      const endpoints = (pools[mutation.pool % pools.length] as Rec).endpoints as Rec[];
      if (!endpoints.some((e) => e.address === mutation.address))
        endpoints.push({ address: mutation.address });
      return;
    }
    case "remove-endpoint": {
      if (pools.length === 0) return;
      const endpoints = (pools[mutation.pool % pools.length] as Rec).endpoints as Rec[];
      // A pool keeps at least one endpoint.
      if (endpoints.length > 1) endpoints.splice(mutation.at % endpoints.length, 1);
      return;
    }
    case "reorder-routes": {
      const keyed = routes.map((route, i) => ({
        route,
        key: mutation.order[i % mutation.order.length] ?? 0,
        i,
      }));
      keyed.sort((a, b) => a.key - b.key || b.i - a.i);
      config.routes = keyed.map((k) => k.route);
      return;
    }
    case "change-balancer": {
      if (pools.length === 0) return;
      const pool = pools[mutation.pool % pools.length] as Rec;
      pool.balancer = mutation.balancer;
      if (mutation.balancer === "consistent_hash") pool.hash_on = mutation.key;
      else delete pool.hash_on;
      return;
    }
    case "add-pool": {
      const id = freshId(
        mutation.id,
        pools.map((p) => p.id),
      );
      pools.push({ id, endpoints: [{ address: mutation.address }] });
      return;
    }
    case "remove-pool": {
      if (pools.length === 0) return;
      const pool = pools[mutation.pool % pools.length] as Rec;
      // Only a pool nothing refers to can go.
      if (!refersToPool(config, pool.id as string)) pools.splice(pools.indexOf(pool), 1);
      return;
    }
  }
}

function refersToPool(config: Rec, id: string): boolean {
  const routes = (config.routes ?? []) as Rec[];
  const plans = (config.traffic_management ?? []) as Rec[];
  return (
    routes.some((r) => r.pool === id) ||
    plans.some((p) => {
      const cohorts = p.cohort_routing as Rec | undefined;
      return (
        p.stable_pool === id ||
        p.canary_pool === id ||
        Object.values((cohorts?.mappings ?? {}) as Rec).includes(id) ||
        Object.keys((cohorts?.weights ?? {}) as Rec).includes(id)
      );
    })
  );
}
