/**
 * The structural diff on examples: how each kind of edit is addressed and printed. The
 * general laws (the diff explains every change, is empty only for equal content) are in
 * config.property.test.ts.
 */
import { describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import {
  applyChanges,
  type DynamicConfig,
  diffConfigs,
  formatChange,
  formatPath,
  parseDynamicConfig,
} from "./index.js";

const BASE = `
routes:
  - id: api-route
    path_prefix: /api/
    methods: [GET, POST]
    pool: api-pool
    policy:
      timeout: 5s
    middleware: chain
  - id: web-route
    path_prefix: /
    pool: web-pool
pools:
  - id: api-pool
    endpoints:
      - address: 10.0.1.10:8000
      - address: 10.0.1.11:8000
  - id: web-pool
    balancer: least_request
    endpoints:
      - address: 10.0.2.10:8080
middleware:
  - id: chain
    stages:
      - type: request_id
      - type: header_transform
        config:
          set:
            X-Env: prod
      - type: access_log
`;

type Doc = Record<string, unknown> & {
  routes: Array<Record<string, unknown>>;
  pools: Array<Record<string, unknown> & { endpoints: Array<Record<string, unknown>> }>;
  middleware: Array<{ id: string; stages: Array<Record<string, unknown>> }>;
};

function config(doc: unknown): DynamicConfig {
  const result = parseDynamicConfig(typeof doc === "string" ? doc : stringify(doc));
  if (!result.ok) throw new Error(result.errors.map((e) => `${e.path}: ${e.message}`).join("\n"));
  return result.value;
}

/** The base config as data, edited by `edit`, and both validated. */
function edited(edit: (doc: Doc) => void): { before: DynamicConfig; after: DynamicConfig } {
  const doc = parse(BASE) as Doc;
  edit(doc);
  return { before: config(BASE), after: config(doc) };
}

/** The diff, checked to rebuild `after` from `before`. */
function diff(before: DynamicConfig, after: DynamicConfig) {
  const changes = diffConfigs(before, after);
  expect(applyChanges(before, changes)).toStrictEqual(after);
  return changes;
}

describe("diffConfigs and formatChange", () => {
  it("addresses a route's timeout by the route's id, in ms", () => {
    const { before, after } = edited((doc) => {
      (doc.routes[0] as { policy: { timeout: string } }).policy.timeout = "3000ms";
    });
    const changes = diff(before, after);
    expect(changes).toEqual([
      {
        kind: "changed",
        path: ["routes", { key: "api-route" }, "policy", "timeout"],
        before: 5000,
        after: 3000,
      },
    ]);
    expect(changes.map(formatChange)).toEqual(["routes[api-route].policy.timeout: 5000 → 3000"]);
  });

  it("finds no change when only notation, case or order of unordered lists differ", () => {
    const { before, after } = edited((doc) => {
      (doc.routes[0] as Record<string, unknown>).policy = { timeout: 5000 };
      (doc.routes[0] as Record<string, unknown>).methods = ["post", "get", "GET"];
      doc.pools.reverse();
      doc.pools[1]!.endpoints.reverse();
      (doc.middleware[0]!.stages[1] as { config: unknown }).config = { set: { "x-env": "prod" } };
    });
    expect(diff(before, after)).toEqual([]);
  });

  it("reports an added pool as one change, with the whole entry", () => {
    const pool = { id: "worker-pool", endpoints: [{ address: "10.0.3.10:9000" }] };
    const { before, after } = edited((doc) => {
      doc.pools.push(pool);
    });
    const changes = diff(before, after);
    expect(changes).toEqual([{ kind: "added", path: ["pools", { key: "worker-pool" }], after: pool }]);
    expect(formatChange(changes[0] as (typeof changes)[0])).toBe(
      'pools[worker-pool]: added {"endpoints":[{"address":"10.0.3.10:9000"}],"id":"worker-pool"}',
    );
  });

  // Pools are kept sorted, so an id that sorts first is still only an addition.
  it("reports an added pool as one change wherever its id sorts", () => {
    const pool = { id: "cache-pool", endpoints: [{ address: "10.0.3.10:9000" }] };
    const { before, after } = edited((doc) => {
      doc.pools.push(pool);
    });
    expect(diff(before, after)).toEqual([
      { kind: "added", path: ["pools", { key: "cache-pool" }], after: pool },
    ]);
  });

  it("reports a removed pool as one change", () => {
    const legacy = { id: "legacy-pool", endpoints: [{ address: "10.0.9.1:80" }] };
    const before = config({ ...(parse(BASE) as Doc), pools: [...(parse(BASE) as Doc).pools, legacy] });
    const after = config(BASE);
    const changes = diff(before, after);
    expect(changes).toEqual([{ kind: "removed", path: ["pools", { key: "legacy-pool" }], before: legacy }]);
    expect(changes.map(formatChange)).toEqual(["pools[legacy-pool]: removed"]);
  });

  it("addresses an endpoint added inside a pool by its address", () => {
    const { before, after } = edited((doc) => {
      doc.pools[0]!.endpoints.push({ address: "10.0.1.12:8000" });
    });
    const changes = diff(before, after);
    expect(changes).toHaveLength(1);
    expect(changes[0]).toMatchObject({ kind: "added", after: { address: "10.0.1.12:8000" } });
    expect(formatPath((changes[0] as (typeof changes)[0]).path)).toBe(
      "pools[api-pool].endpoints[10.0.1.12:8000]",
    );
    expect(changes.map(formatChange)).toEqual([
      'pools[api-pool].endpoints[10.0.1.12:8000]: added {"address":"10.0.1.12:8000"}',
    ]);
  });

  it("addresses a removed endpoint by its address", () => {
    const { before, after } = edited((doc) => {
      doc.pools[0]!.endpoints.splice(0, 1);
    });
    expect(diff(before, after).map(formatChange)).toEqual([
      "pools[api-pool].endpoints[10.0.1.10:8000]: removed",
    ]);
  });

  it("reports reordered routes as one change with the id lists before and after", () => {
    const { before, after } = edited((doc) => {
      doc.routes.reverse();
    });
    const changes = diff(before, after);
    expect(changes).toEqual([
      {
        kind: "reordered",
        path: ["routes"],
        before: ["api-route", "web-route"],
        after: ["web-route", "api-route"],
      },
    ]);
    expect(changes.map(formatChange)).toEqual(["routes: order api-route, web-route → web-route, api-route"]);
  });

  it("addresses middleware stages by position", () => {
    const { before, after } = edited((doc) => {
      (doc.middleware[0]!.stages[1] as { config: { set: Record<string, string> } }).config.set["X-Env"] =
        "staging";
    });
    const changes = diff(before, after);
    expect(changes).toEqual([
      {
        kind: "changed",
        path: ["middleware", { key: "chain" }, "stages", 1, "config", "set", "x-env"],
        before: "prod",
        after: "staging",
      },
    ]);
    expect(changes.map(formatChange)).toEqual([
      'middleware[chain].stages[1].config.set.x-env: "prod" → "staging"',
    ]);
  });

  it("reports a stage replaced by another type field by field, at its position", () => {
    const { before, after } = edited((doc) => {
      (doc.middleware[0] as { stages: unknown[] }).stages[1] = { type: "tracing" };
    });
    expect(diff(before, after).map(formatChange).sort()).toEqual([
      "middleware[chain].stages[1].config: removed",
      'middleware[chain].stages[1].type: "header_transform" → "tracing"',
    ]);
  });

  it("reports added and removed stages at the end of the chain by position", () => {
    const { before, after } = edited((doc) => {
      doc.middleware[0]!.stages.push({ type: "tracing" });
    });
    expect(diff(before, after).map(formatChange)).toEqual([
      'middleware[chain].stages[3]: added {"type":"tracing"}',
    ]);
    expect(diff(after, before).map(formatChange)).toEqual(["middleware[chain].stages[3]: removed"]);
  });

  it("reports a change of a list of plain values (methods) as one change of the whole list", () => {
    const { before, after } = edited((doc) => {
      doc.routes[0] = { ...doc.routes[0], methods: ["GET", "PUT", "DELETE"] };
    });
    const changes = diff(before, after);
    expect(changes).toEqual([
      {
        kind: "changed",
        path: ["routes", { key: "api-route" }, "methods"],
        before: ["GET", "POST"],
        after: ["DELETE", "GET", "PUT"],
      },
    ]);
    expect(changes.map(formatChange)).toEqual([
      'routes[api-route].methods: ["GET","POST"] → ["DELETE","GET","PUT"]',
    ]);
  });

  it("reports a pool's balancer change and keeps every other path untouched", () => {
    const { before, after } = edited((doc) => {
      (doc.pools[1] as Record<string, unknown>).balancer = "round_robin";
    });
    expect(diff(before, after).map(formatChange)).toEqual([
      'pools[web-pool].balancer: "least_request" → "round_robin"',
    ]);
  });

  it("reports an added and a removed section by name", () => {
    const { before, after } = edited((doc) => {
      doc.cache = [{ route: "web-route", ttl: "1m" }];
      delete (doc as Record<string, unknown>).middleware;
      delete (doc.routes[0] as Record<string, unknown>).middleware;
    });
    // The order of changes follows the order of keys; only the set is specified.
    expect(diff(before, after).map(formatChange).sort()).toEqual([
      'cache: added [{"route":"web-route","ttl":60000}]',
      "middleware: removed",
      "routes[api-route].middleware: removed",
    ]);
  });

  it("does not modify the config it applies changes to", () => {
    const { before, after } = edited((doc) => {
      doc.routes.reverse();
      doc.pools[0]!.endpoints.push({ address: "10.0.1.12:8000" });
    });
    const snapshot = structuredClone(before);
    applyChanges(before, diffConfigs(before, after));
    expect(before).toStrictEqual(snapshot);
  });
});
