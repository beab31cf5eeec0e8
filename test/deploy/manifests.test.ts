/**
 * deploy/ checked offline: every Kubernetes object against the API's schemas (kubernetes-models,
 * and CloudNativePG's for the database Cluster), the agent's static config against its own
 * schema, every PromQL expression against the official grammar, every metric an alert or a panel
 * names against the metrics the code registers, and the systemd units' keys.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Cluster } from "@kubernetes-models/cloudnative-pg/postgresql.cnpg.io/v1";
import { parser } from "@prometheus-io/lezer-promql";
import { Deployment } from "kubernetes-models/apps/v1";
import { Job } from "kubernetes-models/batch/v1";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { ConfigMap, Namespace, Secret, Service } from "kubernetes-models/v1";
import { describe, expect, it } from "vitest";
import { parseAllDocuments, parse as parseYaml } from "yaml";
import { AGENT_NODE_FLAGS } from "../../agent/runtime/node-flags.js";
import { parseStaticConfig } from "../../services/config/index.js";

const ROOT = join(import.meta.dirname, "..", "..");
const DEPLOY = join(ROOT, "deploy");

interface Manifest {
  readonly file: string;
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly object: Record<string, unknown>;
}

interface Validatable {
  validate(): void;
}

// Objects read from YAML are of unknown shape until validate() has looked at them.
type ClusterData = ConstructorParameters<typeof Cluster>[0];

/** The model of each kind deploy/kubernetes uses; a kind missing here fails the test. */
const MODELS: Record<string, (data: Record<string, unknown>) => Validatable> = {
  "v1/Namespace": (data) => new Namespace(data),
  "v1/Secret": (data) => new Secret(data),
  "v1/ConfigMap": (data) => new ConfigMap(data),
  "v1/Service": (data) => new Service(data),
  "apps/v1/Deployment": (data) => new Deployment(data),
  "batch/v1/Job": (data) => new Job(data),
  "networking.k8s.io/v1/NetworkPolicy": (data) => new NetworkPolicy(data),
  "policy/v1/PodDisruptionBudget": (data) => new PodDisruptionBudget(data),
  "postgresql.cnpg.io/v1/Cluster": (data) => new Cluster(data as unknown as ClusterData),
};

function loadManifests(): Manifest[] {
  const dir = join(DEPLOY, "kubernetes");
  const manifests: Manifest[] = [];
  for (const name of readdirSync(dir).filter((f) => /\.ya?ml$/.test(f))) {
    const file = join("deploy", "kubernetes", name);
    for (const doc of parseAllDocuments(readFileSync(join(dir, name), "utf8"))) {
      if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0]?.message}`);
      const object = doc.toJS() as Record<string, unknown> | null;
      if (object === null) continue;
      const metadata = (object.metadata ?? {}) as { name?: string };
      manifests.push({
        file,
        apiVersion: String(object.apiVersion),
        kind: String(object.kind),
        name: String(metadata.name),
        object,
      });
    }
  }
  return manifests;
}

const manifests = loadManifests();

function find(kind: string, name: string): Manifest {
  const found = manifests.find((m) => m.kind === kind && m.name === name);
  if (!found) throw new Error(`no ${kind} ${name} under deploy/kubernetes`);
  return found;
}

// The pod template's parts this test looks into; the schemas have checked their types.
interface Container {
  name: string;
  command?: string[];
  env?: { name: string; valueFrom?: { secretKeyRef?: { name: string } } }[];
  livenessProbe?: { httpGet?: { path: string; port: number | string } };
  readinessProbe?: { httpGet?: { path: string; port: number | string } };
  lifecycle?: { preStop?: { exec?: { command: string[] } } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: { allowPrivilegeEscalation?: boolean; readOnlyRootFilesystem?: boolean };
}
interface PodSpec {
  terminationGracePeriodSeconds?: number;
  securityContext?: { runAsNonRoot?: boolean };
  containers: Container[];
  volumes?: { secret?: { secretName: string }; configMap?: { name: string } }[];
}

function podOf(manifest: Manifest): { labels: Record<string, string>; spec: PodSpec } {
  const spec = manifest.object.spec as {
    template: { metadata: { labels: Record<string, string> }; spec: PodSpec };
  };
  return { labels: spec.template.metadata.labels, spec: spec.template.spec };
}

const workloads = manifests.filter((m) => m.kind === "Deployment" || m.kind === "Job");

describe("deploy/kubernetes", () => {
  it("holds every object this deployment needs", () => {
    const kinds = manifests.map((m) => `${m.kind}/${m.name}`);
    for (const name of ["coherent-authority", "coherent-controller", "coherent-agent-web-eu-west"]) {
      expect(kinds).toContain(`Deployment/${name}`);
      expect(kinds).toContain(`PodDisruptionBudget/${name}`);
    }
    for (const region of ["eu-west", "us-east"]) {
      expect(kinds).toContain(`Deployment/coherent-distributor-${region}`);
      expect(kinds).toContain(`Service/coherent-distributor-${region}`);
    }
    expect(kinds).toEqual(
      expect.arrayContaining([
        "Namespace/coherent",
        "Job/coherent-migrate",
        "Cluster/coherent-db",
        "NetworkPolicy/coherent-default-deny",
        "Secret/coherent-signing-key",
        "Secret/coherent-trusted-keys",
      ]),
    );
    expect(podOf(find("Deployment", "coherent-authority")).spec.containers).toHaveLength(1);
    expect((find("Deployment", "coherent-authority").object.spec as { replicas: number }).replicas).toBe(2);
    expect((find("Deployment", "coherent-controller").object.spec as { replicas: number }).replicas).toBe(2);
    expect((find("Cluster", "coherent-db").object.spec as { instances: number }).instances).toBe(3);
  });

  it("validates every object against the Kubernetes and CloudNativePG schemas", () => {
    expect(manifests.length).toBeGreaterThan(20);
    const problems: string[] = [];
    for (const manifest of manifests) {
      const where = `${manifest.file}: ${manifest.kind} ${manifest.name}`;
      const model = MODELS[`${manifest.apiVersion}/${manifest.kind}`];
      if (!model) {
        problems.push(`${where}: no schema for ${manifest.apiVersion} ${manifest.kind}`);
        continue;
      }
      try {
        model(manifest.object).validate();
      } catch (error) {
        problems.push(`${where}: ${(error as Error).message}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it("catches a broken object: the check above is not vacuous", () => {
    const deployment = structuredClone(find("Deployment", "coherent-authority").object);
    const spec = deployment.spec as { replicas: unknown; template: { spec: { containers: unknown } } };
    spec.replicas = "two";
    expect(() => new Deployment(deployment).validate()).toThrow(/replicas/);
    const cluster = structuredClone(find("Cluster", "coherent-db").object);
    (cluster.spec as { instances: unknown }).instances = "3";
    expect(() => new Cluster(cluster as unknown as ClusterData).validate()).toThrow(/instances/);
  });

  it("runs every container as non-root, without privilege escalation, on a read-only root", () => {
    const problems: string[] = [];
    for (const workload of workloads) {
      const { spec } = podOf(workload);
      if (spec.securityContext?.runAsNonRoot !== true) problems.push(`${workload.name}: runAsNonRoot`);
      for (const container of spec.containers) {
        const context = container.securityContext;
        if (context?.allowPrivilegeEscalation !== false)
          problems.push(`${workload.name}: privilege escalation`);
        if (context?.readOnlyRootFilesystem !== true) problems.push(`${workload.name}: writable root`);
        if (!container.resources?.requests) problems.push(`${workload.name}: no resource requests`);
      }
    }
    expect(problems).toEqual([]);
  });

  it("refers only to Secrets, ConfigMaps and pod labels it defines", () => {
    const names = new Set(manifests.map((m) => `${m.kind}/${m.name}`));
    // CloudNativePG makes this Secret for the Cluster coherent-db.
    names.add("Secret/coherent-db-app");
    const missing: string[] = [];
    for (const workload of workloads) {
      const { spec } = podOf(workload);
      for (const volume of spec.volumes ?? []) {
        if (volume.secret && !names.has(`Secret/${volume.secret.secretName}`))
          missing.push(volume.secret.secretName);
        if (volume.configMap && !names.has(`ConfigMap/${volume.configMap.name}`))
          missing.push(volume.configMap.name);
      }
      for (const env of spec.containers.flatMap((c) => c.env ?? [])) {
        const ref = env.valueFrom?.secretKeyRef?.name;
        if (ref && !names.has(`Secret/${ref}`)) missing.push(ref);
      }
    }
    expect(missing).toEqual([]);
    const podLabels = workloads.map((w) => podOf(w).labels);
    const selects = (selector: Record<string, string>) =>
      podLabels.some((labels) => Object.entries(selector).every(([k, v]) => labels[k] === v));
    for (const m of manifests.filter((m) => m.kind === "Service" || m.kind === "PodDisruptionBudget")) {
      const spec = m.object.spec as {
        selector: Record<string, string> & { matchLabels?: Record<string, string> };
      };
      const selector = m.kind === "Service" ? spec.selector : (spec.selector.matchLabels ?? {});
      expect(selects(selector), `${m.kind} ${m.name} selects no pod`).toBe(true);
    }
  });

  it("gives the agent the spec's probes, preStop and resources, its V8 flags, and a grace period covering its drain", () => {
    const agent = find("Deployment", "coherent-agent-web-eu-west");
    const { spec } = podOf(agent);
    const proxy = spec.containers[0]!;
    expect(proxy.command).toEqual([
      "node",
      ...AGENT_NODE_FLAGS,
      "/usr/local/bin/proxy",
      "--static-config",
      "/etc/proxy/static.yaml",
    ]);
    expect(proxy.livenessProbe?.httpGet).toMatchObject({ path: "/healthz", port: 9090 });
    expect(proxy.readinessProbe?.httpGet).toMatchObject({ path: "/ready", port: 9090 });
    expect(proxy.lifecycle?.preStop?.exec?.command).toEqual(["/bin/sh", "-c", "sleep 15"]);
    expect(proxy.resources).toEqual({
      requests: { cpu: "2000m", memory: "4Gi" },
      limits: { cpu: "8000m", memory: "16Gi" },
    });

    const configMap = find("ConfigMap", "coherent-agent-web-eu-west").object as {
      data: Record<string, string>;
    };
    const parsed = parseStaticConfig(configMap.data["static.yaml"]!);
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
    const { shutdown, admin_address, control_plane } = parsed.value;
    expect(admin_address).toBe(":9090");
    expect(control_plane?.region).toBe("eu-west");
    expect(control_plane?.distributors).toEqual(["coherent-distributor-eu-west.coherent.svc:7402"]);
    const drainSeconds = ((shutdown?.drain_delay ?? 0) + (shutdown?.drain_timeout ?? 0)) / 1000;
    expect(spec.terminationGracePeriodSeconds).toBeGreaterThan(15 + drainSeconds);
  });
});

/** Metric names the code registers (prom-client or the agent's hot metrics), with histograms' series. */
function exportedMetrics(): Set<string> {
  const names = new Set<string>();
  const pattern =
    /new\s+(?:Hot)?(Counter|Gauge|Histogram|Summary)\s*(?:<[^>]*>)?\(\s*\{\s*name:\s*"([a-zA-Z_:][a-zA-Z0-9_:]*)"/g;
  const visit = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) visit(path);
      else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".test.ts")) {
        for (const [, type, name] of readFileSync(path, "utf8").matchAll(pattern)) {
          names.add(name!);
          if (type === "Histogram" || type === "Summary") {
            for (const suffix of ["_sum", "_count"]) names.add(`${name}${suffix}`);
            if (type === "Histogram") names.add(`${name}_bucket`);
          }
        }
      }
    }
  };
  for (const dir of ["agent", "services", "authority", "rollout-controller"]) visit(join(ROOT, dir));
  return names;
}

/** Series Prometheus makes itself for every scrape target. */
const PROMETHEUS_SERIES = new Set(["up"]);

/** The metric names an expression selects; throws on a syntax error, with where it is. */
function metricsOf(expr: string): string[] {
  const tree = parser.parse(expr);
  const names: string[] = [];
  let error: number | undefined;
  tree.iterate({
    enter: (node) => {
      if (node.type.isError && error === undefined) error = node.from;
      if (node.name === "Identifier" && node.node.parent?.name === "VectorSelector") {
        names.push(expr.slice(node.from, node.to));
      }
    },
  });
  if (error !== undefined) throw new Error(`invalid PromQL at ${error}: ${expr}`);
  return names;
}

interface Rule {
  readonly alert?: string;
  readonly record?: string;
  readonly expr: string;
  readonly for?: string;
  readonly labels?: Record<string, string>;
}

const exported = exportedMetrics();
const ruleFile = parseYaml(readFileSync(join(DEPLOY, "prometheus", "alerts.yaml"), "utf8")) as {
  groups: { name: string; rules: Rule[] }[];
};
const rules = ruleFile.groups.flatMap((group) => group.rules);
const recorded = new Set(rules.flatMap((rule) => (rule.record ? [rule.record] : [])));
const known = (name: string) => exported.has(name) || recorded.has(name) || PROMETHEUS_SERIES.has(name);

describe("deploy/prometheus", () => {
  it("finds the metrics the code exports", () => {
    expect(exported).toContain("proxy_requests_total");
    expect(exported).toContain("proxy_request_duration_seconds_bucket");
    expect(exported).toContain("coherent_distributor_connected_agents");
    expect(exported).not.toContain("proxy_requests_total_bucket");
  });

  it("has only valid PromQL, naming only exported or recorded metrics", () => {
    expect(rules.length).toBeGreaterThan(10);
    const unknown: string[] = [];
    for (const rule of rules) {
      for (const name of metricsOf(rule.expr))
        if (!known(name)) unknown.push(`${rule.alert ?? rule.record}: ${name}`);
    }
    expect(unknown).toEqual([]);
  });

  it("tells a broken expression and an unknown metric apart from good ones", () => {
    expect(() => metricsOf("sum(rate(proxy_requests_total[5m])")).toThrow(/invalid PromQL/);
    expect(metricsOf("rate(proxy_requests_totl[5m])").every(known)).toBe(false);
  });

  it("alerts on burn rate over two windows, NACKs, stale agents, breakers and the authority", () => {
    const alerts = new Map(rules.flatMap((rule) => (rule.alert ? [[rule.alert, rule] as const] : [])));
    for (const rule of alerts.values()) {
      expect(rule.labels?.severity, rule.alert).toMatch(/^(page|ticket|warning)$/);
      if (rule.for !== undefined) expect(rule.for).toMatch(/^\d+[smhd]$/);
    }
    for (const [alert, metric] of [
      ["CoherentErrorBudgetBurnFast", "coherent:proxy_error_ratio:rate5m"],
      ["CoherentBundleNacked", "coherent_distributor_nacks_total"],
      ["CoherentAgentsStale", "coherent_distributor_connected_agents"],
      ["CoherentBreakerTripping", "proxy_breaker_trips_total"],
      ["CoherentAuthorityUnreachable", "coherent_distributor_authority_connected"],
      ["CoherentDistributorLostAuthority", "coherent_distributor_authority_connected"],
    ] as const) {
      expect(metricsOf(alerts.get(alert)?.expr ?? ""), alert).toContain(metric);
    }
    expect(metricsOf(alerts.get("CoherentErrorBudgetBurnFast")!.expr)).toContain(
      "coherent:proxy_error_ratio:rate1h",
    );
  });
});

describe("deploy/grafana", () => {
  const dashboard = JSON.parse(readFileSync(join(DEPLOY, "grafana", "coherent.json"), "utf8")) as {
    panels: { title: string; type: string; targets?: { expr: string }[] }[];
    templating: { list: { name: string; query: unknown }[] };
  };
  // Grafana's own variable: any duration stands in for it when the grammar checks the query.
  const asPromql = (expr: string) => expr.replaceAll("$__rate_interval", "5m");

  it("has only valid PromQL, naming only exported or recorded metrics", () => {
    const exprs = dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((t) => t.expr));
    expect(exprs.length).toBeGreaterThan(15);
    const unknown = exprs.flatMap((expr) => metricsOf(asPromql(expr)).filter((name) => !known(name)));
    expect(unknown).toEqual([]);
    const variables = dashboard.templating.list.flatMap((v) =>
      typeof v.query === "object" && v.query !== null ? [(v.query as { query: string }).query] : [],
    );
    for (const query of variables) {
      const inner = /^label_values\((.*),\s*\w+\)$/.exec(query)?.[1];
      expect(inner, query).toBeDefined();
      expect(metricsOf(inner!).every(known), query).toBe(true);
    }
  });

  it("shows requests, errors, p95/p99 latency, breakers, NACKs and connected agents", () => {
    const all = dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((t) => t.expr)).join("\n");
    for (const needle of [
      "proxy_requests_total",
      'status=~"5.."',
      "histogram_quantile(0.95, sum by (le) (rate(proxy_request_duration_seconds_bucket",
      "histogram_quantile(0.99, sum by (le) (rate(proxy_request_duration_seconds_bucket",
      "proxy_breaker_state",
      "coherent_distributor_nacks_total",
      "proxy_config_info",
      "coherent_distributor_connected_agents",
    ]) {
      expect(all).toContain(needle);
    }
  });
});

/** A unit file as section → key → values (a key may repeat). */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const section = /^\[(.+)\]$/.exec(line);
    if (section) {
      current = new Map();
      sections.set(section[1]!, current);
      continue;
    }
    const eq = line.indexOf("=");
    if (!current || eq < 1) throw new Error(`not a unit line: ${line}`);
    const key = line.slice(0, eq);
    current.set(key, [...(current.get(key) ?? []), line.slice(eq + 1)]);
  }
  return sections;
}

describe("deploy/systemd", () => {
  const dir = join(DEPLOY, "systemd");
  const units = Object.fromEntries(
    readdirSync(dir)
      .filter((f) => f.endsWith(".service"))
      .map((f) => [f, parseUnit(readFileSync(join(dir, f), "utf8"))]),
  );

  it("runs each component as its own user (the agent by node with its V8 flags), with an EnvironmentFile, stopped by SIGTERM", () => {
    const commands = {
      "coherent-authority.service": /^\/usr\/bin\/coherent authority( |$)/,
      "coherent-controller.service": /^\/usr\/bin\/coherent controller( |$)/,
      "coherent-distributor.service": /^\/usr\/bin\/coherent distributor( |$)/,
      "coherent-proxy.service": new RegExp(
        `^/usr/bin/node ${AGENT_NODE_FLAGS.join(" ")} /usr/bin/proxy --static-config /`,
      ),
    };
    expect(Object.keys(units).sort()).toEqual(Object.keys(commands).sort());
    for (const [file, command] of Object.entries(commands)) {
      const service = units[file]?.get("Service");
      expect(service, file).toBeDefined();
      expect(service?.get("ExecStart")?.[0], file).toMatch(command);
      expect(service?.get("EnvironmentFile")?.[0], file).toMatch(/^-?\/etc\/coherent\/.+\.env$/);
      expect(service?.get("KillSignal"), file).toEqual(["SIGTERM"]);
      expect(service?.get("TimeoutStopSec")?.[0], file).toMatch(/^\d+s$/);
      expect(service?.get("User")?.[0], file).toMatch(/^coherent/);
      expect(units[file]?.get("Install")?.get("WantedBy"), file).toEqual(["multi-user.target"]);
    }
  });

  it("reloads the agent with SIGHUP and waits out its whole drain", () => {
    const service = units["coherent-proxy.service"]!.get("Service")!;
    expect(service.get("ExecReload")).toEqual(["/bin/kill -HUP $MAINPID"]);
    const example = parseStaticConfig(readFileSync(join(dir, "proxy-static.yaml.example"), "utf8"));
    if (!example.ok) throw new Error(JSON.stringify(example.errors));
    const drainMs =
      (example.value.shutdown?.drain_delay ?? 10_000) + (example.value.shutdown?.drain_timeout ?? 30_000);
    const stopMs = Number.parseInt(service.get("TimeoutStopSec")![0]!, 10) * 1000;
    expect(stopMs).toBeGreaterThan(drainMs);
  });

  it("ships an example of each unit's EnvironmentFile", () => {
    const examples = readdirSync(dir).filter((f) => f.endsWith(".env.example"));
    for (const file of Object.keys(units)) {
      const env = units[file]!.get("Service")!.get("EnvironmentFile")![0]!;
      const base = env.replace(/^-?\/etc\/coherent\//, "");
      expect(examples, file).toContain(`${base}.example`);
    }
  });
});
