/**
 * Plugins by id, kept across snapshot swaps: an external filter's channel stays open while
 * its config is unchanged, and its call counters survive even a changed one.
 *
 * Binding a snapshot calls `pluginsFor` with the config's plugins: an unchanged plugin is
 * reused, a changed one replaced by a new instance. The replaced and the removed ones are
 * closed by `retain`, called after the swap, so requests still running on the old snapshot
 * keep working plugins until then (and an external filter closes only once its calls have
 * settled).
 */
import { canonicalJson, type Plugin } from "../../services/config/index.js";
import type { Logger } from "../../services/telemetry/logger.js";
import { ExternalGrpcFilter } from "./external-grpc-filter.js";
import { PLUGIN_OUTCOMES, PluginCalls, type PluginFilter, type PluginOutcome } from "./plugin.js";
import { type PluginSettings, pluginSettings } from "./plugin-settings.js";
import { StructuredLoggerPlugin } from "./structured-logger.js";

type RunningPlugin = ExternalGrpcFilter | StructuredLoggerPlugin;

interface Entry {
  readonly plugin: RunningPlugin;
  /** The settings it was made with, canonical, to tell an unchanged config. */
  readonly fingerprint: string;
}

export interface PluginRegistryOptions {
  /** The process logger: structured_logger lines and external filter failures go here. */
  readonly logger: Logger;
  readonly now?: () => number;
}

export interface PluginCallCount {
  readonly plugin: string;
  readonly outcome: PluginOutcome;
  readonly count: number;
}

export class PluginRegistry {
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry>();
  readonly #calls = new Map<string, PluginCalls>();
  /** Replaced by `pluginsFor`, closed by the next `retain`. */
  #replaced: RunningPlugin[] = [];

  constructor(options: PluginRegistryOptions) {
    this.#logger = options.logger;
    this.#now = options.now ?? Date.now;
  }

  /**
   * The running plugin of every (validated) config entry, by id. Throws when an external
   * filter's TLS files cannot be read.
   */
  pluginsFor(configs: readonly Plugin[] | undefined): ReadonlyMap<string, PluginFilter> {
    const plugins = new Map<string, PluginFilter>();
    for (const config of configs ?? []) plugins.set(config.id, this.#pluginFor(pluginSettings(config)));
    return plugins;
  }

  get(id: string): PluginFilter | undefined {
    return this.#entries.get(id)?.plugin;
  }

  /** Closes the plugins replaced since the last call and those whose id is not in `ids`. */
  retain(ids: Iterable<string>): void {
    const kept = new Set(ids);
    for (const plugin of this.#replaced) closePlugin(plugin);
    this.#replaced = [];
    for (const [id, entry] of this.#entries) {
      if (kept.has(id)) continue;
      closePlugin(entry.plugin);
      this.#entries.delete(id);
      this.#calls.delete(id);
    }
  }

  /** Every plugin's calls by outcome, for `proxy_plugin_calls_total{plugin, outcome}`. */
  callCounts(): PluginCallCount[] {
    const counts: PluginCallCount[] = [];
    for (const [plugin, calls] of this.#calls) {
      for (const outcome of PLUGIN_OUTCOMES) counts.push({ plugin, outcome, count: calls[outcome] });
    }
    return counts;
  }

  /** Closes every plugin; external filters once their calls in flight have settled. */
  close(): void {
    this.retain([]);
  }

  #pluginFor(settings: PluginSettings): RunningPlugin {
    const fingerprint = canonicalJson(settings);
    const existing = this.#entries.get(settings.id);
    if (existing?.fingerprint === fingerprint) return existing.plugin;
    let calls = this.#calls.get(settings.id);
    if (!calls) {
      calls = new PluginCalls();
      this.#calls.set(settings.id, calls);
    }
    const plugin =
      settings.kind === "external_grpc"
        ? new ExternalGrpcFilter(settings, { calls, logger: this.#logger, now: this.#now })
        : new StructuredLoggerPlugin(settings, { calls, logger: this.#logger });
    if (existing) this.#replaced.push(existing.plugin);
    this.#entries.set(settings.id, { plugin, fingerprint });
    return plugin;
  }
}

/** Only external filters hold resources: their gRPC channel. */
function closePlugin(plugin: RunningPlugin): void {
  if (plugin instanceof ExternalGrpcFilter) plugin.close();
}
