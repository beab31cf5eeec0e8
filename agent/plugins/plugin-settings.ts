/**
 * A plugin's config entry resolved into what its implementation runs with: defaults applied,
 * and the free-form `config` of a builtin checked, since the config schema leaves that to
 * the plugin. `checkPlugins` reports every problem with its path for config validation;
 * the registry resolves only configs that passed it.
 */
import type { Plugin } from "../../services/config/index.js";
import type { FailMode } from "./plugin.js";

/** The spec's example timeout: a filter is in the path of every request it sees. */
export const DEFAULT_FILTER_TIMEOUT_MS = 50;

export type ExternalGrpcPlugin = Extract<Plugin, { type: "external_grpc" }>;
export type BuiltinPlugin = Extract<Plugin, { type: "builtin" }>;

export interface ExternalGrpcSettings {
  readonly kind: "external_grpc";
  readonly id: string;
  readonly address: string;
  readonly timeoutMs: number;
  /** Closed unless configured: a filter is usually there to keep requests out. */
  readonly failMode: FailMode;
  readonly tls: ExternalGrpcPlugin["tls"];
}

export interface StructuredLoggerSettings {
  readonly kind: "structured_logger";
  readonly id: string;
  /** Open unless configured: logging is no reason to refuse a request. */
  readonly failMode: FailMode;
  /** Request headers whose values the line carries, lowercase. */
  readonly headers: readonly string[];
}

export type PluginSettings = ExternalGrpcSettings | StructuredLoggerSettings;

/** Effective settings of a validated plugin config (the schema checked every field). */
export function pluginSettings(plugin: Plugin): PluginSettings {
  if (plugin.type === "external_grpc") {
    return {
      kind: "external_grpc",
      id: plugin.id,
      address: plugin.address,
      timeoutMs: plugin.timeout ?? DEFAULT_FILTER_TIMEOUT_MS,
      failMode: plugin.fail_mode ?? "closed",
      tls: plugin.tls,
    };
  }
  return {
    kind: "structured_logger",
    id: plugin.id,
    failMode: plugin.fail_mode ?? "open",
    headers: plugin.config?.headers ?? [],
  };
}
