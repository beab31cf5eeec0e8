/**
 * The static config: the process itself (addresses, timeouts, observability, admin access,
 * shutdown and the control plane). A complete config validates with its units normalized;
 * broken ones are refused with exact (code, path) pairs.
 */
import { describe, expect, it } from "vitest";
import { type ConfigErrorCode, type ConfigIssue, formatIssue, parseStaticConfig } from "./index.js";

const FULL = `
http_address: ":8080"
https_address: "0.0.0.0:8443"
admin_address: "127.0.0.1:9090"

read_header_timeout: 5s
idle_timeout: 90s
request_timeout: 1m
max_header_size: 64KB

workers: auto

tls:
  cert_file: /etc/certs/proxy.crt
  key_file: /etc/certs/proxy.key

logging:
  level: info
  format: json
  access_log: true
metrics:
  exporter: prometheus
  address: ":9091"
  path: /metrics
tracing:
  endpoint: http://jaeger:4318/v1/traces
  sample_ratio: 0.1
  service_name: coherent-proxy
  max_queue_size: 2048

admin:
  tokens:
    - 4f1c2a9e7b3d8c6a5e0f
  token_file: /etc/proxy/admin-tokens
  tls:
    cert_file: /etc/certs/admin.crt
    key_file: /etc/certs/admin.key
    client_ca_file: /etc/certs/admin-ca.crt
    require_client_cert: true

shutdown:
  drain_delay: 10s
  drain_timeout: 30s

control_plane:
  distributors:
    - distributor-1.us-east-1.internal:7443
    - 10.0.5.2:7443
  fleet: edge
  region: us-east-1
  agent_id: proxy-a1
  labels:
    zone: us-east-1a
  trusted_keys:
    - kid: authority-2026-01
      public_key: |
        -----BEGIN PUBLIC KEY-----
        MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=
        -----END PUBLIC KEY-----
    - kid: authority-2025-07
      public_key_file: /etc/proxy/keys/authority-2025-07.pem
  state_dir: /var/lib/coherent
  health_report_interval: 10s
  tls:
    ca_file: /etc/certs/control-ca.crt
    cert_file: /etc/certs/agent.crt
    key_file: /etc/certs/agent.key
    server_name: distributor.internal
`;

describe("a full static config", () => {
  it("validates and normalizes its units", () => {
    const result = parseStaticConfig(FULL);
    if (!result.ok) expect.fail(result.errors.map((e) => formatIssue(e)).join("\n"));
    const config = result.value;
    expect(config).toMatchObject({
      http_address: ":8080",
      https_address: "0.0.0.0:8443",
      admin_address: "127.0.0.1:9090",
      read_header_timeout: 5000,
      idle_timeout: 90_000,
      request_timeout: 60_000,
      max_header_size: 65_536,
      workers: "auto",
      logging: { level: "info", format: "json", access_log: true },
      metrics: { exporter: "prometheus", address: ":9091", path: "/metrics" },
      tracing: { sample_ratio: 0.1, service_name: "coherent-proxy", max_queue_size: 2048 },
      admin: { tokens: ["4f1c2a9e7b3d8c6a5e0f"], tls: { require_client_cert: true } },
      shutdown: { drain_delay: 10_000, drain_timeout: 30_000 },
    });
    const plane = config.control_plane;
    expect(plane?.distributors).toEqual(["distributor-1.us-east-1.internal:7443", "10.0.5.2:7443"]);
    expect(plane).toMatchObject({
      fleet: "edge",
      region: "us-east-1",
      agent_id: "proxy-a1",
      state_dir: "/var/lib/coherent",
      health_report_interval: 10_000,
    });
    expect(plane?.trusted_keys.map((k) => k.kid)).toEqual(["authority-2026-01", "authority-2025-07"]);
    expect(plane?.trusted_keys[0]?.public_key).toContain("BEGIN PUBLIC KEY");
  });

  it("accepts a worker count instead of auto", () => {
    const result = parseStaticConfig(FULL.replace("workers: auto", "workers: 4"));
    expect(result.ok && result.value.workers).toBe(4);
  });

  it("accepts an empty mapping, every field being optional", () => {
    expect(parseStaticConfig("{}")).toEqual({ ok: true, value: {} });
  });
});

interface StaticCase {
  readonly name: string;
  readonly yaml: string;
  readonly errors: ReadonlyArray<readonly [ConfigErrorCode, string]>;
  readonly message?: RegExp;
}

/** A control_plane whose one trusted key is given as `key` (YAML lines at 4 spaces). */
function controlPlane(key: string): string {
  return `control_plane:\n  distributors: ["d1.internal:7443"]\n  fleet: edge\n  region: eu-west-1\n  trusted_keys:\n    - kid: k1\n${key}`;
}

const CASES: StaticCase[] = [
  { name: "zero workers", yaml: "workers: 0\n", errors: [["invalid_value", "workers"]] },
  { name: "more workers than allowed", yaml: "workers: 1000\n", errors: [["invalid_value", "workers"]] },
  { name: "a worker count that is a word", yaml: "workers: many\n", errors: [["invalid_value", "workers"]] },
  {
    name: "an admin token shorter than 16 characters",
    yaml: "admin:\n  tokens:\n    - short-token\n",
    errors: [["invalid_value", "admin.tokens[0]"]],
    message: /16/,
  },
  {
    name: "a trusted key with both public_key and public_key_file",
    yaml: controlPlane("      public_key: abc\n      public_key_file: /etc/keys/k1.pem\n"),
    errors: [["conflicting_fields", "control_plane.trusted_keys[0].public_key_file"]],
  },
  {
    // Neither key source is a missing field, as cohort_routing reports "none of header,
    // cookie, hash_on" in the dynamic config.
    name: "a trusted key with neither public_key nor public_key_file",
    yaml: controlPlane(""),
    errors: [["missing_field", "control_plane.trusted_keys[0].public_key"]],
  },
  {
    name: "require_client_cert without client_ca_file",
    yaml: "admin:\n  tls:\n    cert_file: /c.crt\n    key_file: /c.key\n    require_client_cert: true\n",
    errors: [["missing_field", "admin.tls.client_ca_file"]],
  },
  {
    name: "a control_plane without trusted_keys",
    yaml: 'control_plane:\n  distributors: ["d1.internal:7443"]\n  fleet: edge\n  region: eu-west-1\n',
    errors: [["missing_field", "control_plane.trusted_keys"]],
  },
  {
    name: "a control_plane with an empty list of trusted keys",
    yaml: 'control_plane:\n  distributors: ["d1.internal:7443"]\n  fleet: edge\n  region: eu-west-1\n  trusted_keys: []\n',
    errors: [["invalid_value", "control_plane.trusted_keys"]],
  },
  {
    name: "a distributor address without a port",
    yaml: controlPlane("      public_key: abc\n").replace('"d1.internal:7443"', '"d1.internal"'),
    errors: [["invalid_value", "control_plane.distributors[0]"]],
  },
  {
    name: "an unknown top-level field",
    yaml: "loging:\n  level: info\n",
    errors: [["unknown_field", "loging"]],
    message: /did you mean "logging"/,
  },
  {
    name: "an unknown field inside control_plane",
    yaml: controlPlane("      public_key: abc\n").replace("region:", "regoin:"),
    errors: [
      ["unknown_field", "control_plane.regoin"],
      ["missing_field", "control_plane.region"],
    ],
  },
  {
    name: "an admin address without a port",
    yaml: 'admin_address: "9090"\n',
    errors: [["invalid_value", "admin_address"]],
  },
  {
    name: "a log level that does not exist",
    yaml: "logging:\n  level: verbose\n",
    errors: [["invalid_value", "logging.level"]],
  },
  {
    name: "a sample ratio above 1",
    yaml: "tracing:\n  sample_ratio: 1.5\n",
    errors: [["invalid_value", "tracing.sample_ratio"]],
  },
  {
    name: "a tracing endpoint that is not a URL",
    yaml: "tracing:\n  endpoint: jaeger\n",
    errors: [["invalid_value", "tracing.endpoint"]],
  },
  {
    name: "a duration in words",
    yaml: "idle_timeout: 90 seconds\n",
    errors: [["invalid_value", "idle_timeout"]],
  },
  { name: "a list at the root", yaml: "- http_address\n", errors: [["invalid_value", ""]] },
  { name: "an empty document", yaml: "", errors: [["config_syntax", ""]] },
  {
    name: "a schema error and a cross-field error together",
    yaml: `workers: 0\n${controlPlane("      public_key: abc\n      public_key_file: /etc/keys/k1.pem\n")}`,
    errors: [
      ["invalid_value", "workers"],
      ["conflicting_fields", "control_plane.trusted_keys[0].public_key_file"],
    ],
  },
];

function pairs(errors: readonly ConfigIssue[]): string[] {
  return errors.map((e) => `${e.code} ${e.path}`).sort();
}

describe("invalid static configs", () => {
  for (const c of CASES) {
    it(`refuses ${c.name}`, () => {
      const result = parseStaticConfig(c.yaml);
      if (result.ok) expect.fail(`expected errors, but the config is valid: ${JSON.stringify(result.value)}`);
      const listing = result.errors.map((e) => formatIssue(e)).join("\n");
      expect(pairs(result.errors), listing).toEqual(c.errors.map(([code, path]) => `${code} ${path}`).sort());
      for (const error of result.errors) expect(error.message.trim(), formatIssue(error)).not.toBe("");
      if (c.message) expect(result.errors[0]?.message, listing).toMatch(c.message);
    });
  }

  it("gives the line and column of an unknown field", () => {
    const result = parseStaticConfig('http_address: ":8080"\nlogging:\n  level: info\n  fromat: json\n');
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors).toMatchObject([
      { code: "unknown_field", path: "logging.fromat", line: 4, column: 3 },
    ]);
    expect(result.errors[0]?.message).toMatch(/did you mean "format"/);
  });
});
