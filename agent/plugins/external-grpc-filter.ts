/**
 * A `type: external_grpc` plugin: asks an external filter (filter.proto's RequestFilter) about
 * each request over one long-lived gRPC channel. A call never outlives the plugin's timeout:
 * every call carries a deadline, and a failure of any kind — unreachable filter, timeout,
 * crash mid-call, malformed answer — becomes the plugin's fail mode, never an exception.
 */
import { readFileSync } from "node:fs";
import { type ChannelCredentials, type ClientOptions, credentials, Metadata, status } from "@grpc/grpc-js";
import { type FilterResponse, RequestFilterClient } from "../../proto/coherent/v1/filter.js";
import type { Logger } from "../../services/telemetry/logger.js";
import { applyDecision, MALFORMED } from "./filter-decision.js";
import { filterRequest } from "./filter-request.js";
import {
  failureResult,
  type PluginCalls,
  type PluginContext,
  type PluginFilter,
  type StageResult,
} from "./plugin.js";
import type { ExternalGrpcSettings } from "./plugin-settings.js";

/** A failing filter fails every request it sees; one warning per interval says so, with a count. */
const WARN_INTERVAL_MS = 10_000;

const CHANNEL_OPTIONS: Partial<ClientOptions> = {
  // Pings while calls are in flight find a connection that died silently, which would
  // otherwise time out every call until TCP gives up. Not while idle: servers by default
  // answer idle pings with GOAWAY too_many_pings.
  "grpc.keepalive_time_ms": 10_000,
  "grpc.keepalive_timeout_ms": 5_000,
  // Calls fail fast while the filter is down; the backoff is how long after it comes back
  // requests keep failing, so it stays short (grpc's default grows to 120 s).
  "grpc.initial_reconnect_backoff_ms": 250,
  "grpc.max_reconnect_backoff_ms": 5_000,
  // A filter is an internal service: HTTP(S)_PROXY in the agent's environment is not for it.
  "grpc.enable_http_proxy": 0,
};

/** Calls carry no metadata of their own; grpc-js copies it per call, so one instance serves all. */
const NO_METADATA = new Metadata();

export interface ExternalGrpcFilterOptions {
  /** Outcome counters, owned by the registry so they outlive a replaced plugin. */
  readonly calls: PluginCalls;
  readonly logger: Logger;
  readonly now?: () => number;
}

export class ExternalGrpcFilter implements PluginFilter {
  readonly id: string;
  readonly #client: RequestFilterClient;
  readonly #timeoutMs: number;
  readonly #failMode: ExternalGrpcSettings["failMode"];
  readonly #calls: PluginCalls;
  readonly #logger: Logger;
  readonly #now: () => number;
  #inFlight = 0;
  #closing = false;
  #lastWarning = Number.NEGATIVE_INFINITY;
  #unreported = 0;

  /** Throws when a TLS file cannot be read: binding a snapshot fails before its swap. */
  constructor(settings: ExternalGrpcSettings, options: ExternalGrpcFilterOptions) {
    this.id = settings.id;
    this.#timeoutMs = settings.timeoutMs;
    this.#failMode = settings.failMode;
    this.#calls = options.calls;
    this.#logger = options.logger;
    this.#now = options.now ?? Date.now;
    this.#client = new RequestFilterClient(settings.address, channelCredentials(settings), {
      ...CHANNEL_OPTIONS,
      ...(settings.tls?.sni && {
        "grpc.ssl_target_name_override": settings.tls.sni,
        "grpc.default_authority": settings.tls.sni,
      }),
    });
    // Connect now rather than on the first request, which would pay for the handshake.
    this.#client.getChannel().getConnectivityState(true);
  }

  /** Calls the filter; settles within the timeout, with the decision or the fail mode. */
  filter(ctx: PluginContext): Promise<StageResult> {
    return new Promise<StageResult>((resolve) => {
      try {
        // grpc-js measures deadlines against the wall clock, not an injected one.
        const deadline = Date.now() + this.#timeoutMs;
        this.#client.filter(filterRequest(ctx), NO_METADATA, { deadline }, (err, response) => {
          this.#inFlight--;
          if (this.#closing && this.#inFlight === 0) this.#client.close();
          if (err) {
            const outcome = err.code === status.DEADLINE_EXCEEDED ? "timeout" : "error";
            resolve(this.#failed(outcome, `${status[err.code]}: ${err.details}`));
          } else resolve(this.#decided(response, ctx.upstreamHeaders));
        });
        this.#inFlight++;
      } catch (err) {
        // A closed channel refuses calls synchronously; a request that cannot be described
        // (claims that are not JSON) fails here too.
        resolve(this.#failed("error", err instanceof Error ? err.message : String(err)));
      }
    });
  }

  /**
   * Called when a config no longer uses this plugin as it is: the channel closes once the
   * calls in flight have settled, each within its deadline. Calls after that fail by the
   * fail mode. Idempotent.
   */
  close(): void {
    if (this.#closing) return;
    this.#closing = true;
    if (this.#inFlight === 0) this.#client.close();
  }

  #decided(response: FilterResponse, upstreamHeaders: Record<string, string | string[]>): StageResult {
    const result = applyDecision(response, upstreamHeaders);
    if (result === MALFORMED) return this.#failed("error", "malformed response (see filter.proto)");
    if (result === undefined) this.#calls.allow++;
    else this.#calls.deny++;
    return result;
  }

  #failed(outcome: "error" | "timeout", reason: string): StageResult {
    this.#calls[outcome]++;
    this.#unreported++;
    const now = this.#now();
    if (now - this.#lastWarning >= WARN_INTERVAL_MS) {
      this.#lastWarning = now;
      this.#logger.warn(
        {
          event: "plugin_failed",
          plugin: this.id,
          outcome,
          reason,
          failures: this.#unreported,
          fail_mode: this.#failMode,
        },
        "external filter call failed",
      );
      this.#unreported = 0;
    }
    return failureResult(this.#failMode);
  }
}

function channelCredentials(settings: ExternalGrpcSettings): ChannelCredentials {
  const tls = settings.tls;
  if (!tls) return credentials.createInsecure();
  const read = (file: string | undefined, field: string): Buffer | null => {
    if (file === undefined) return null;
    try {
      return readFileSync(file);
    } catch (err) {
      throw new Error(`plugin ${settings.id}: cannot read tls.${field} ${file}: ${(err as Error).message}`);
    }
  };
  return credentials.createSsl(
    read(tls.ca_file, "ca_file"),
    read(tls.key_file, "key_file"),
    read(tls.cert_file, "cert_file"),
    { rejectUnauthorized: tls.verify ?? true },
  );
}
