/**
 * The static config: the process itself. It changes rarely and may need a restart. Secrets
 * (admin tokens) may sit here or in files it names; they are never logged.
 */
import { z } from "zod";
import { ConfigErrorCode } from "../errors.js";
import {
  duration,
  endpointAddress,
  filePath,
  id,
  listenAddress,
  positiveInt,
  ratio,
  size,
  strict,
  urlString,
} from "./primitives.js";

const HOUR = 3_600_000;

export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;

const TlsFilesSchema = strict({
  cert_file: filePath().describe("Certificate chain (PEM)"),
  key_file: filePath().describe("Private key (PEM)"),
});

export const TrustedKeySchema = strict({
  kid: z.string().min(1).describe("Key id, matched against the bundle's JWS header"),
  public_key: z.string().min(1).optional().describe("Ed25519 public key as PEM (SPKI) or a JWK JSON string"),
  public_key_file: filePath().optional().describe("A file holding the public key (instead of public_key)"),
}).superRefine((key, ctx) => {
  if (key.public_key !== undefined && key.public_key_file !== undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["public_key_file"],
      message: "set public_key or public_key_file, not both",
      params: { code: ConfigErrorCode.Conflict },
    });
  } else if (key.public_key === undefined && key.public_key_file === undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["public_key"],
      message: "a trusted key needs public_key or public_key_file",
      params: { code: ConfigErrorCode.MissingField },
    });
  }
});

export const ControlPlaneSchema = strict({
  distributors: z
    .array(endpointAddress())
    .min(1, { error: "name at least one distributor" })
    .describe("The region's distributors (host:port); the agent connects to one and fails over"),
  fleet: id().describe("The fleet whose bundles this agent runs"),
  region: id().describe("The agent's region; distributors of another region are noted in the log"),
  agent_id: id().optional().describe("Defaults to the host name"),
  labels: z
    .record(z.string().min(1), z.string())
    .optional()
    .describe("Labels reported with the agent, for cohorts and listings"),
  trusted_keys: z
    .array(TrustedKeySchema)
    .min(1, { error: "trust at least one signing key" })
    .describe("Keys bundles must be signed with; others are refused"),
  state_dir: filePath().optional().describe("Where the last good bundle is kept across restarts"),
  health_report_interval: duration({ min: 100, max: HOUR })
    .optional()
    .describe("How often health is reported to the distributor (default 5s)"),
  tls: strict({
    ca_file: filePath().optional().describe("CA certificates (PEM) that verify the distributors"),
    cert_file: filePath().optional().describe("Client certificate (PEM), when distributors require one"),
    key_file: filePath().optional().describe("Private key (PEM) of cert_file"),
    server_name: z
      .string()
      .min(1)
      .optional()
      .describe("Name verified in the distributors' certificates (default: their host)"),
  })
    .optional()
    .describe("TLS to the distributors (plaintext when absent)"),
});

export const StaticConfigSchema = strict({
  http_address: listenAddress()
    .optional()
    .describe("Accepted as in the spec; the agent listens where the dynamic config's listeners say"),
  https_address: listenAddress()
    .optional()
    .describe("Accepted as in the spec; the agent listens where the dynamic config's listeners say"),
  admin_address: listenAddress()
    .optional()
    .describe("Admin API address; absent: no admin API (also --admin, PROXY_ADMIN_ADDRESS)"),
  read_header_timeout: duration({ min: 1, max: HOUR })
    .optional()
    .describe("Time to read request headers, for listeners that set none (default 10s)"),
  idle_timeout: duration({ min: 1, max: 24 * HOUR })
    .optional()
    .describe("Keep-alive idle time, for listeners that set none (default 90s)"),
  request_timeout: duration({ min: 1, max: 24 * HOUR })
    .optional()
    .describe("Accepted as in the spec; request deadlines come from policies' timeout"),
  max_header_size: size({ min: 1024, max: 1024 ** 2 })
    .optional()
    .describe("Largest request header block, for listeners that set none (default 16KB)"),
  workers: z
    .union([z.literal("auto"), positiveInt(256)])
    .optional()
    .describe('"auto" (one per core) or a count (default 1)'),
  tls: TlsFilesSchema.optional().describe(
    "Default certificate for https listeners (also PROXY_TLS_CERT/KEY)",
  ),
  logging: strict({
    level: z.enum(LOG_LEVELS).optional().describe("Lowest level logged (default info; also PROXY_LOG_LEVEL)"),
    format: z.enum(["json", "pretty"]).optional().describe("Accepted as in the spec; logs are JSON lines"),
    access_log: z
      .boolean()
      .optional()
      .describe("Log every request; false: only routes whose chain has an access_log stage (default true)"),
  })
    .optional()
    .describe("Process logs (JSON lines on stdout)"),
  metrics: strict({
    exporter: z
      .literal("prometheus")
      .optional()
      .describe("Accepted as in the spec; metrics are Prometheus text"),
    address: listenAddress()
      .optional()
      .describe("A listener serving only /metrics (also PROXY_METRICS_ADDRESS)"),
    path: z.string().startsWith("/").optional().describe("Accepted; metrics are served at /metrics"),
  })
    .optional()
    .describe("Prometheus metrics (also served by the admin API at /metrics)"),
  tracing: strict({
    endpoint: urlString().optional().describe("OTLP/HTTP traces endpoint (also PROXY_TRACE_ENDPOINT)"),
    sample_ratio: ratio().optional().describe("Share of new traces sampled (default 0.01)"),
    service_name: z.string().min(1).optional().describe("service.name of the spans (default coherent-proxy)"),
    max_queue_size: positiveInt(1_000_000)
      .optional()
      .describe("Spans buffered for export at most; more are dropped (default 2048)"),
  })
    .optional()
    .describe("OpenTelemetry traces, off without an endpoint"),
  admin: strict({
    tokens: z
      .array(z.string().min(16, { error: "an admin token needs at least 16 characters" }))
      .optional()
      .describe("Bearer tokens the admin API accepts (also PROXY_ADMIN_TOKEN)"),
    token_file: filePath().optional().describe("A file holding one more token"),
    tls: strict({
      ...TlsFilesSchema.shape,
      client_ca_file: filePath().optional().describe("CA certificates (PEM) that verify client certificates"),
      require_client_cert: z
        .boolean()
        .optional()
        .describe("Refuse clients without a valid certificate (default false)"),
    })
      .superRefine((tls, ctx) => {
        if (tls.require_client_cert && tls.client_ca_file === undefined) {
          ctx.addIssue({
            code: "custom",
            path: ["client_ca_file"],
            message: "require_client_cert needs client_ca_file to verify client certificates",
            params: { code: ConfigErrorCode.MissingField },
          });
        }
      })
      .optional()
      .describe("Serve the admin API over TLS, optionally with client certificates"),
  })
    .optional()
    .describe("The admin API's credentials and TLS"),
  shutdown: strict({
    drain_delay: duration({ max: HOUR })
      .optional()
      .describe("Wait for load balancers to notice (default 10s)"),
    drain_timeout: duration({ max: HOUR }).optional().describe("Wait for active requests (default 30s)"),
  })
    .optional()
    .describe("Graceful shutdown on SIGTERM"),
  control_plane: ControlPlaneSchema.optional().describe(
    "Run managed: receive signed bundles from distributors instead of a config file",
  ),
});

export type StaticConfigInput = z.input<typeof StaticConfigSchema>;
export type StaticConfig = z.output<typeof StaticConfigSchema>;
export type ControlPlaneConfig = z.output<typeof ControlPlaneSchema>;
