/**
 * Checks that span fields or sections of a dynamic config, in three kinds:
 *
 * - uniqueness, on the keys as written (`WrittenKeys`), so an entry with errors of its own
 *   still counts as taking its id;
 * - references, on every entry that could be read, including entries recovered from a
 *   schema failure without their broken fields, so fixing one error does not merely reveal
 *   the next; names resolve against every id written, so a route pointing at a pool that has
 *   an error of its own gets no misleading "unknown pool";
 * - consistency (fields that exclude or need each other, shadowed routes), on fully valid
 *   entries only: a recovered entry lacks fields, and judging it would invent errors.
 */

import { canonicalJson } from "./canonical-json.js";
import { ConfigErrorCode } from "./errors.js";
import { didYouMean, type RawIssue, type RawPath } from "./issues.js";
import { formatPath } from "./path.js";
import type {
  CacheRule,
  Certificate,
  JwtConfig,
  Listener,
  MiddlewareChain,
  Plugin,
  Policy,
  Pool,
  RolloutPlan,
  Route,
  TlsConfig,
  TrafficPlan,
} from "./schema/dynamic.js";

/** A section's entries by index; an entry that failed the schema is a hole. */
export type Sparse<T> = ReadonlyArray<T | undefined>;

export interface ConfigSections {
  readonly listeners: Sparse<Listener>;
  readonly routes: Sparse<Route>;
  readonly pools: Sparse<Pool>;
  readonly policies: Sparse<Policy>;
  readonly middleware: Sparse<MiddlewareChain>;
  readonly traffic_management: Sparse<TrafficPlan>;
  readonly cache: Sparse<CacheRule>;
  readonly plugins: Sparse<Plugin>;
  readonly certificates: Sparse<Certificate>;
  readonly tls: TlsConfig | undefined;
  readonly rollout: RolloutPlan | undefined;
  /** Value sections that are present but invalid: checks that read them are skipped. */
  readonly invalid: ReadonlySet<"tls" | "rollout">;
}

/**
 * The key of every entry of each top-level keyed list as written in the input (undefined
 * where it is not a string), valid entry or not. Duplicates and references are judged on
 * these, so an entry with an error of its own still counts as taken and as existing.
 */
export type WrittenKeys = Readonly<Record<keyof typeof KEY_FIELD, ReadonlyArray<string | undefined>>>;

/** The field that names an entry of each top-level keyed list. */
export const KEY_FIELD = {
  listeners: "address",
  routes: "id",
  pools: "id",
  policies: "id",
  middleware: "id",
  plugins: "id",
  traffic_management: "route",
  cache: "route",
} as const;

type Kind = "routes" | "pools" | "policies" | "middleware" | "plugins";
const KIND_NOUN: Record<Kind, string> = {
  routes: "route",
  pools: "pool",
  policies: "policy",
  middleware: "middleware chain",
  plugins: "plugin",
};

class Checker {
  readonly issues: RawIssue[] = [];
  readonly known: Readonly<Record<Kind, ReadonlySet<string>>>;

  constructor(readonly written: WrittenKeys) {
    const ids = (kind: Kind) => new Set(written[kind].filter((key) => key !== undefined));
    this.known = {
      routes: ids("routes"),
      pools: ids("pools"),
      policies: ids("policies"),
      middleware: ids("middleware"),
      plugins: ids("plugins"),
    };
  }

  report(code: RawIssue["code"], path: RawPath, message: string): void {
    this.issues.push({ code, path, message });
  }

  reference(kind: Kind, name: string | undefined, path: RawPath): void {
    if (name === undefined || this.known[kind].has(name)) return;
    this.report(
      ConfigErrorCode.UnknownReference,
      path,
      `unknown ${KIND_NOUN[kind]} "${name}"${didYouMean(name, this.known[kind])}`,
    );
  }

  /** Reports every entry after the first that repeats a key; entries without a key are skipped. */
  unique<T>(
    list: RawPath,
    entries: ReadonlyArray<T | undefined>,
    keyOf: (entry: T) => string | undefined,
    field: string,
  ): void {
    const first = new Map<string, number>();
    entries.forEach((entry, index) => {
      const key = entry === undefined ? undefined : keyOf(entry);
      if (key === undefined) return;
      const earlier = first.get(key);
      if (earlier === undefined) first.set(key, index);
      else {
        this.report(
          ConfigErrorCode.DuplicateId,
          [...list, index, field],
          `duplicate ${field} "${key}": already used by ${formatPath([...list, earlier])}`,
        );
      }
    });
  }

  exclusive(path: RawPath, entry: object, fields: readonly string[]): void {
    const present = fields.filter((f) => (entry as Record<string, unknown>)[f] !== undefined);
    if (present.length > 1) {
      this.report(
        ConfigErrorCode.Conflict,
        [...path, present[1] as string],
        `${present.map((f) => `"${f}"`).join(" and ")} exclude each other: keep one`,
      );
    }
  }
}

/**
 * `valid` holds the entries that passed the schema; `readable` also the ones recovered
 * without their broken fields, in the holes `valid` has for them.
 */
export function checkSemantics(
  valid: ConfigSections,
  readable: ConfigSections,
  written: WrittenKeys,
): RawIssue[] {
  const check = new Checker(written);
  for (const [section, field] of Object.entries(KEY_FIELD)) {
    check.unique([section], written[section as keyof WrittenKeys], (key) => key, field);
  }
  checkReferences(check, readable);
  checkRoutes(check, valid, readable);
  checkPools(check, valid.pools);
  checkPolicies(check, valid.policies);
  checkMiddleware(check, valid);
  checkTrafficPlans(check, valid.traffic_management);
  checkTls(check, valid);
  if (valid.rollout) checkRollout(check, valid.rollout);
  return check.issues;
}

function checkReferences(check: Checker, s: ConfigSections): void {
  s.routes.forEach((route, i) => {
    if (!route) return;
    check.reference("pools", route.pool, ["routes", i, "pool"]);
    check.reference("policies", route.policy_ref, ["routes", i, "policy_ref"]);
    check.reference("middleware", route.middleware, ["routes", i, "middleware"]);
  });
  s.middleware.forEach((chain, i) => {
    chain?.stages.forEach((stage, j) => {
      if (stage.type === "rate_limit")
        check.reference("policies", stage.policy_ref, ["middleware", i, "stages", j, "policy_ref"]);
      if (stage.type === "plugin")
        check.reference("plugins", stage.plugin, ["middleware", i, "stages", j, "plugin"]);
    });
  });
  s.traffic_management.forEach((plan, i) => {
    if (!plan) return;
    check.reference("routes", plan.route, ["traffic_management", i, "route"]);
    check.reference("pools", plan.stable_pool, ["traffic_management", i, "stable_pool"]);
    check.reference("pools", plan.canary_pool, ["traffic_management", i, "canary_pool"]);
    const cohorts = ["traffic_management", i, "cohort_routing"] as const;
    for (const [value, pool] of Object.entries(plan.cohort_routing?.mappings ?? {})) {
      check.reference("pools", pool, [...cohorts, "mappings", value]);
    }
    for (const pool of Object.keys(plan.cohort_routing?.weights ?? {})) {
      check.reference("pools", pool, [...cohorts, "weights", pool]);
    }
  });
  s.cache.forEach((rule, i) => {
    if (rule) check.reference("routes", rule.route, ["cache", i, "route"]);
  });
}

function checkRoutes(check: Checker, s: ConfigSections, readable: ConfigSections): void {
  const planned = new Set(
    readable.traffic_management.flatMap((plan) => (plan?.stable_pool ? [plan.route] : [])),
  );
  const mtls = s.tls?.mtls?.enabled === true || s.invalid.has("tls");
  const matches = new Map<string, number>();
  s.routes.forEach((route, i) => {
    if (!route) return;
    const at = ["routes", i] as const;
    check.exclusive(at, route, ["path", "path_prefix", "path_regex"]);
    check.exclusive(at, route, ["policy", "policy_ref"]);
    if (route.pool === undefined && !planned.has(route.id)) {
      check.report(
        ConfigErrorCode.MissingField,
        [...at, "pool"],
        "a route needs a pool: set pool, or a traffic_management entry with a stable_pool for it",
      );
    }
    if (route.require_mtls && !mtls) {
      check.report(
        ConfigErrorCode.Conflict,
        [...at, "require_mtls"],
        "require_mtls needs tls.mtls.enabled: true, or no client could ever match this route",
      );
    }
    if (route.policy) checkPolicyBody(check, route.policy, [...at, "policy"]);
    const signature = matchSignature(route);
    const earlier = matches.get(signature);
    if (earlier === undefined) matches.set(signature, i);
    else {
      check.report(
        ConfigErrorCode.DuplicateRoute,
        [...at],
        `matches exactly the same requests as routes[${earlier}] ("${(s.routes[earlier] as Route).id}"), so it could never be chosen`,
      );
    }
  });
}

/** Two routes with equal signatures match the same requests; the later one is dead. */
function matchSignature(route: Route): string {
  const { host, path, path_prefix, path_regex, methods, headers, query } = route;
  const conditions = headers || query ? canonicalJson({ headers, query }) : "";
  return JSON.stringify([host, path, path_prefix, path_regex, methods?.join(","), conditions]);
}

function checkPools(check: Checker, pools: Sparse<Pool>): void {
  pools.forEach((pool, i) => {
    if (!pool) return;
    const at = ["pools", i] as const;
    check.unique([...at, "endpoints"], pool.endpoints, (e) => e.address, "address");
    if (pool.balancer === "consistent_hash" && pool.hash_on === undefined) {
      check.report(
        ConfigErrorCode.MissingField,
        [...at, "hash_on"],
        "consistent_hash needs hash_on (header:NAME, cookie:NAME or client_ip)",
      );
    }
    if (pool.hash_on !== undefined && pool.balancer !== "consistent_hash") {
      check.report(
        ConfigErrorCode.Conflict,
        [...at, "hash_on"],
        "hash_on is only used with balancer: consistent_hash",
      );
    }
    const active = pool.health?.active;
    if (active?.timeout !== undefined && active.timeout >= active.interval) {
      check.report(
        ConfigErrorCode.Conflict,
        [...at, "health", "active", "timeout"],
        "the probe timeout must be shorter than its interval",
      );
    }
    if (pool.tls && (pool.tls.cert_file === undefined) !== (pool.tls.key_file === undefined)) {
      check.report(
        ConfigErrorCode.MissingField,
        [...at, "tls"],
        "a client certificate needs both cert_file and key_file",
      );
    }
  });
}

function checkPolicies(check: Checker, policies: Sparse<Policy>): void {
  policies.forEach((policy, i) => {
    if (policy) checkPolicyBody(check, policy, ["policies", i]);
  });
}

function checkPolicyBody(check: Checker, policy: Omit<Policy, "id">, at: RawPath): void {
  const backoff = policy.retries?.backoff;
  if (backoff && backoff.base > backoff.max) {
    check.report(
      ConfigErrorCode.Conflict,
      [...at, "retries", "backoff", "base"],
      "backoff base must not exceed its max",
    );
  }
  if (policy.hedging && policy.timeout !== undefined && policy.hedging.delay >= policy.timeout) {
    check.report(
      ConfigErrorCode.Conflict,
      [...at, "hedging", "delay"],
      "the hedging delay must be shorter than the timeout, or no hedge is ever sent",
    );
  }
}

const SINGLE_STAGES = new Set(["request_id", "auth", "tracing", "access_log"]);

function checkMiddleware(check: Checker, s: ConfigSections): void {
  s.middleware.forEach((chain, i) => {
    if (!chain) return;
    const seen = new Map<string, number>();
    chain.stages.forEach((stage, j) => {
      const at = ["middleware", i, "stages", j] as const;
      const earlier = seen.get(stage.type);
      if (SINGLE_STAGES.has(stage.type) && earlier !== undefined) {
        check.report(
          ConfigErrorCode.DuplicateId,
          [...at, "type"],
          `stage "${stage.type}" already appears at stages[${earlier}]`,
        );
      }
      seen.set(stage.type, j);
      if (stage.type === "rate_limit") {
        const policy = s.policies.find((p) => p?.id === stage.policy_ref);
        if (policy && !policy.rate_limit) {
          check.report(
            ConfigErrorCode.Conflict,
            [...at, "policy_ref"],
            `policy "${stage.policy_ref}" has no rate_limit`,
          );
        }
      } else if (stage.type === "auth") {
        checkJwt(check, stage.config.jwt, [...at, "config", "jwt"]);
      }
    });
  });
}

/**
 * Keys come from jwks_uri or jwks_file; with neither, as in the spec's example, they are
 * discovered from the issuer's /.well-known/openid-configuration (as Istio does), which
 * needs the issuer to be an https URL.
 */
function checkJwt(check: Checker, jwt: JwtConfig, at: RawPath): void {
  if (jwt.jwks_uri !== undefined && jwt.jwks_file !== undefined) {
    check.report(ConfigErrorCode.Conflict, [...at, "jwks_file"], "set jwks_uri or jwks_file, not both");
  } else if (
    jwt.jwks_uri === undefined &&
    jwt.jwks_file === undefined &&
    !/^https:\/\/[^/]/.test(jwt.issuer)
  ) {
    check.report(
      ConfigErrorCode.MissingField,
      [...at, "jwks_uri"],
      "without jwks_uri or jwks_file, keys are discovered from the issuer, which must then be an https URL",
    );
  }
}

function checkTrafficPlans(check: Checker, plans: Sparse<TrafficPlan>): void {
  plans.forEach((plan, i) => {
    if (!plan) return;
    const at = ["traffic_management", i] as const;
    if (plan.canary_pool !== undefined && plan.stable_pool === undefined) {
      check.report(
        ConfigErrorCode.MissingField,
        [...at, "stable_pool"],
        "a canary_pool needs a stable_pool to split from",
      );
    }
    if (plan.canary_pool !== undefined && plan.canary_pool === plan.stable_pool) {
      check.report(
        ConfigErrorCode.Conflict,
        [...at, "canary_pool"],
        "canary_pool and stable_pool are the same pool",
      );
    }
    if (plan.canary_weight !== undefined && plan.canary_pool === undefined) {
      check.report(ConfigErrorCode.MissingField, [...at, "canary_pool"], "canary_weight needs a canary_pool");
    }
    if (plan.safety_brake && plan.canary_pool === undefined) {
      check.report(ConfigErrorCode.MissingField, [...at, "canary_pool"], "safety_brake needs a canary_pool");
    }
    const cohorts = plan.cohort_routing;
    if (cohorts) {
      const cat = [...at, "cohort_routing"] as const;
      const by = (["header", "cookie", "hash_on"] as const).filter((f) => cohorts[f] !== undefined);
      if (by.length !== 1) {
        check.report(
          by.length === 0 ? ConfigErrorCode.MissingField : ConfigErrorCode.Conflict,
          cat,
          "cohort_routing needs exactly one of header, cookie and hash_on",
        );
      }
      if (cohorts.hash_on !== undefined) {
        if (!cohorts.weights)
          check.report(
            ConfigErrorCode.MissingField,
            [...cat, "weights"],
            "hash_on needs weights: pool → share",
          );
        if (cohorts.mappings)
          check.report(
            ConfigErrorCode.Conflict,
            [...cat, "mappings"],
            "mappings go with header or cookie; hash_on uses weights",
          );
      } else {
        if (!cohorts.mappings)
          check.report(
            ConfigErrorCode.MissingField,
            [...cat, "mappings"],
            "header and cookie cohorts need mappings: value → pool",
          );
        if (cohorts.weights)
          check.report(
            ConfigErrorCode.Conflict,
            [...cat, "weights"],
            "weights go with hash_on; header and cookie use mappings",
          );
      }
    }
    const overload = plan.overload_protection;
    if (overload?.min_concurrent !== undefined && overload.min_concurrent > overload.max_concurrent) {
      check.report(
        ConfigErrorCode.Conflict,
        [...at, "overload_protection", "min_concurrent"],
        "min_concurrent must not exceed max_concurrent",
      );
    }
  });
}

function checkTls(check: Checker, s: ConfigSections): void {
  const all: Array<{ cert: Certificate; path: RawPath }> = [];
  s.tls?.certificates?.forEach((cert, i) => {
    all.push({ cert, path: ["tls", "certificates", i] });
  });
  s.certificates.forEach((cert, i) => {
    if (cert) all.push({ cert, path: ["certificates", i] });
  });
  const names = new Map<string, RawPath>();
  for (const { cert, path } of all) {
    const sni = cert.sni === undefined ? ["(default)"] : typeof cert.sni === "string" ? [cert.sni] : cert.sni;
    for (const name of sni) {
      const earlier = names.get(name);
      if (earlier) {
        const what =
          name === "(default)" ? "a second default certificate (no sni)" : `sni "${name}" is already served`;
        check.report(ConfigErrorCode.DuplicateId, [...path, "sni"], `${what}; see ${formatPath(earlier)}`);
      } else names.set(name, path);
    }
  }
  const mtls = s.tls?.mtls;
  if (mtls?.enabled && mtls.ca_file === undefined) {
    check.report(
      ConfigErrorCode.MissingField,
      ["tls", "mtls", "ca_file"],
      "mTLS needs ca_file to verify client certificates",
    );
  }
  s.listeners.forEach((listener, i) => {
    if (listener?.http2 !== undefined && listener.protocol !== "https") {
      check.report(
        ConfigErrorCode.Conflict,
        ["listeners", i, "http2"],
        "http2 is negotiated by ALPN and needs protocol: https",
      );
    }
  });
}

function checkRollout(check: Checker, plan: RolloutPlan): void {
  let previous = 0;
  const names = new Map<string, number>();
  plan.stages.forEach((stage, i) => {
    const at = ["rollout", "stages", i] as const;
    const earlier = names.get(stage.name);
    if (earlier !== undefined)
      check.report(
        ConfigErrorCode.DuplicateId,
        [...at, "name"],
        `duplicate stage name "${stage.name}": already used by stages[${earlier}]`,
      );
    names.set(stage.name, i);
    if (stage.fleet_percent <= previous) {
      check.report(
        ConfigErrorCode.InvalidValue,
        [...at, "fleet_percent"],
        `fleet_percent must grow from stage to stage (previous: ${previous})`,
      );
    }
    previous = Math.max(previous, stage.fleet_percent);
  });
  const last = plan.stages[plan.stages.length - 1];
  if (last && last.fleet_percent !== 100) {
    check.report(
      ConfigErrorCode.InvalidValue,
      ["rollout", "stages", plan.stages.length - 1, "fleet_percent"],
      "the last stage must reach 100% of the fleet",
    );
  }
  plan.health_gates?.forEach((gate, i) => {
    if (gate.threshold === undefined && gate.relative_to_stable === undefined) {
      check.report(
        ConfigErrorCode.MissingField,
        ["rollout", "health_gates", i],
        "a gate needs a threshold, a relative_to_stable bound, or both",
      );
    }
  });
  const slo = plan.auto_rollback?.slo;
  if (
    slo?.short_window !== undefined &&
    slo.long_window !== undefined &&
    slo.short_window >= slo.long_window
  ) {
    check.report(
      ConfigErrorCode.Conflict,
      ["rollout", "auto_rollback", "slo", "short_window"],
      "the short window must be shorter than the long window",
    );
  }
}
