/**
 * The `plugin` stage: hands the request to a plugin's filter. The plugin is looked up when the
 * chain compiles, so a request uses the plugins of the snapshot it runs against. A plugin that
 * is missing (validation rules it out), throws or rejects fails closed: 503
 * `plugin_unavailable`. Timeouts and `fail_mode` are the plugin's own business.
 */
import type { Logger } from "../../../services/telemetry/logger.js";
import { UNAVAILABLE } from "../../plugins/plugin.js";
import type { PluginFilter, RequestHook, StageResult } from "../middleware.js";

export function compilePluginStage(
  pluginId: string,
  plugin: PluginFilter | undefined,
  logger: Pick<Logger, "error">,
): RequestHook {
  if (!plugin) {
    logger.error(
      { event: "plugin_missing", plugin: pluginId },
      "middleware names an unknown plugin: failing closed",
    );
    return () => UNAVAILABLE;
  }
  const failed = (error: unknown): StageResult => {
    logger.error(
      { event: "plugin_failed", plugin: pluginId, error: String(error) },
      "plugin failed: failing closed",
    );
    return UNAVAILABLE;
  };
  return (ctx) => {
    let result: StageResult | Promise<StageResult>;
    try {
      result = plugin.filter(ctx);
    } catch (error) {
      return failed(error);
    }
    return result instanceof Promise ? result.then(undefined, failed) : result;
  };
}
