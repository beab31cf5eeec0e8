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
  cert_file: filePath(),
  key_file: filePath(),
});

export const TrustedKeySchema = strict({
  kid: z.string().min(1).describe("Key id, matched against the bundle's JWS header"),
  public_key: z.string().min(1).optional().describe("Ed25519 public key as PEM (SPKI) or a JWK JSON string"),
  public_key_file: filePath().optional(),
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
  distributors: z.array(endpointAddress()).min(1, { error: "name at least one distributor" }),
  fleet: id(),
  region: id(),
  agent_id: id().optional().describe("Defaults to the host name"),
  labels: z.record(z.string().min(1), z.string()).optional(),
  trusted_keys: z.array(TrustedKeySchema).min(1, { error: "trust at least one signing key" }),
  state_dir: filePath().optional().describe("Where the last good bundle is kept across restarts"),
  health_report_interval: duration({ min: 100, max: HOUR }).optional(),
  tls: strict({
    ca_file: filePath().optional(),
    cert_file: filePath().optional(),
    key_file: filePath().optional(),
    server_name: z.string().min(1).optional(),
  }).optional(),
});

export const StaticConfigSchema = strict({
  http_address: listenAddress().optional(),
  https_address: listenAddress().optional(),
  admin_address: listenAddress().optional(),
  read_header_timeout: duration({ min: 1, max: HOUR }).optional(),
  idle_timeout: duration({ min: 1, max: 24 * HOUR }).optional(),
  request_timeout: duration({ min: 1, max: 24 * HOUR }).optional(),
  max_header_size: size({ min: 1024, max: 1024 ** 2 }).optional(),
  workers: z
    .union([z.literal("auto"), positiveInt(256)])
    .optional()
    .describe('"auto" (one per core) or a count'),
  tls: TlsFilesSchema.optional().describe(
    "Default certificate for https listeners (also PROXY_TLS_CERT/KEY)",
  ),
  logging: strict({
    level: z.enum(LOG_LEVELS).optional(),
    format: z.enum(["json", "pretty"]).optional(),
    access_log: z.boolean().optional(),
  }).optional(),
  metrics: strict({
    exporter: z.literal("prometheus").optional(),
    address: listenAddress().optional(),
    path: z.string().startsWith("/").optional(),
  }).optional(),
  tracing: strict({
    endpoint: urlString().optional().describe("OTLP/HTTP traces endpoint (also PROXY_TRACE_ENDPOINT)"),
    sample_ratio: ratio().optional(),
    service_name: z.string().min(1).optional(),
    max_queue_size: positiveInt(1_000_000).optional(),
  }).optional(),
  admin: strict({
    tokens: z.array(z.string().min(16, { error: "an admin token needs at least 16 characters" })).optional(),
    token_file: filePath().optional(),
    tls: strict({
      ...TlsFilesSchema.shape,
      client_ca_file: filePath().optional(),
      require_client_cert: z.boolean().optional(),
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
      .optional(),
  }).optional(),
  shutdown: strict({
    drain_delay: duration({ max: HOUR })
      .optional()
      .describe("Wait for load balancers to notice (default 10s)"),
    drain_timeout: duration({ max: HOUR }).optional().describe("Wait for active requests (default 30s)"),
  }).optional(),
  control_plane: ControlPlaneSchema.optional(),
});

export type StaticConfigInput = z.input<typeof StaticConfigSchema>;
export type StaticConfig = z.output<typeof StaticConfigSchema>;
export type ControlPlaneConfig = z.output<typeof ControlPlaneSchema>;
