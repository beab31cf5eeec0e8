/**
 * The distributor's settings file (`coherent --config FILE distributor`, or
 * COHERENT_DISTRIBUTOR_CONFIG): every flag of `coherent distributor` under its snake_case
 * name. A flag or its COHERENT_DISTRIBUTOR_* variable wins over the file, the file over the
 * defaults.
 */
import { z } from "zod";
import { duration, listenAddress } from "../config/schema/primitives.js";
import { readSettingsFile } from "../config/settings-file.js";

/** The least an agent's health_report_interval may be: flushing faster would send nothing new. */
export const MIN_HEALTH_FLUSH_MS = 100;

export const DistributorFileSchema = z.strictObject({
  region: z
    .string()
    .min(1)
    .optional()
    .describe(
      "The region whose agents this distributor serves; also --region (required here or as the flag)",
    ),
  authority: z
    .array(listenAddress().refine((address) => !address.startsWith(":"), "must name the host: host:port"))
    .min(1)
    .optional()
    .describe(
      "host:port of each authority replica's feed, tried in turn; also --authority (required here or as the flag)",
    ),
  listen: listenAddress()
    .optional()
    .describe("Where agents connect (gRPC); also --listen (default 127.0.0.1:7402)"),
  cache_dir: z
    .string()
    .min(1)
    .optional()
    .describe(
      "Bundles and fleet states kept on disk, served at start; also --cache-dir (required here or as the flag)",
    ),
  trusted_keys: z
    .array(z.string().min(1))
    .min(1)
    .optional()
    .describe(
      "Public key PEM files, or directories of *.pem, bundles must be signed by; also --trusted-keys (required here or as the flag)",
    ),
  id: z
    .string()
    .min(1)
    .optional()
    .describe("This distributor's id in agent statuses; also --id (default hostname-pid)"),
  http_listen: z
    .union([listenAddress(), z.literal("off")])
    .optional()
    .describe("/healthz and /metrics, or off; also --http-listen (default 127.0.0.1:9402)"),
  tls: z
    .strictObject({
      cert_file: z.string().min(1).describe("Certificate agents see (PEM)"),
      key_file: z.string().min(1).describe("Its private key (PEM)"),
      client_ca_file: z
        .string()
        .min(1)
        .optional()
        .describe("Require agents' certificates signed by this CA (mTLS)"),
    })
    .optional()
    .describe("Serve agents over TLS; also --tls-cert, --tls-key, --tls-client-ca (plaintext when absent)"),
  authority_tls: z
    .strictObject({
      ca_file: z
        .string()
        .min(1)
        .optional()
        .describe("CA the authority's certificate is checked against (PEM)"),
      cert_file: z
        .string()
        .min(1)
        .optional()
        .describe("Client certificate for an authority that requires mTLS"),
      key_file: z.string().min(1).optional().describe("Its private key"),
      server_name: z
        .string()
        .min(1)
        .optional()
        .describe("The name in the authority's certificate, when not the host dialled"),
    })
    .optional()
    .describe(
      "Reach the authority over TLS; also --authority-ca, --authority-cert, --authority-key, --authority-server-name",
    ),
  health_flush: duration({ min: MIN_HEALTH_FLUSH_MS })
    .optional()
    .describe("How often merged health and changed statuses go up; also --health-flush (default 5s)"),
  log_level: z
    .enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"])
    .optional()
    .describe("Lowest level logged; also --log-level (default info)"),
});

export type DistributorFile = z.output<typeof DistributorFileSchema>;

export function readDistributorFile(path: string): Promise<DistributorFile> {
  return readSettingsFile(path, DistributorFileSchema, "distributor config");
}
