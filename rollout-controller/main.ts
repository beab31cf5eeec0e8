/**
 * A rollout controller running over a store: leadership for the store's dialect (an advisory
 * lock on Postgres; the process itself on the embedded database), webhooks from the settings,
 * restores through the BundleService. `coherent authority` starts one in its own process when
 * its settings say so (always on the embedded database); `coherent controller` runs one alone.
 */
import { hostname } from "node:os";
import type { BundleService } from "../authority/bundle-service.js";
import type { AuthoritySettings } from "../authority/config.js";
import type { AuthorityStore, Dialect } from "../authority/store/index.js";
import type { Logger } from "../services/telemetry/logger.js";
import { CONTROLLER_ACTOR, RolloutController } from "./controller.js";
import { EmbeddedLeadership, type Leadership, PostgresLeadership } from "./leader.js";
import { WebhookNotifier } from "./notifier.js";

export interface ControllerRun {
  readonly store: AuthorityStore;
  readonly bundles: BundleService;
  readonly dialect: Dialect;
  /** Its database (for the lock's own connection on Postgres) and its controller settings. */
  readonly settings: Pick<AuthoritySettings, "database" | "controller">;
  readonly logger: Logger;
  readonly now?: (() => number) | undefined;
}

export interface ControllerHandle {
  readonly controller: RolloutController;
  readonly leadership: Leadership;
  close(): Promise<void>;
}

export function startController(run: ControllerRun): ControllerHandle {
  const logger = run.logger.child({ component: "rollout-controller" });
  const id = `${hostname()}-${process.pid}`;
  const { database, controller: settings } = run.settings;
  const leadership: Leadership =
    run.dialect === "postgres" && database.url !== undefined
      ? new PostgresLeadership({
          url: database.url,
          ...(database.schema === undefined ? {} : { schema: database.schema }),
          checkMs: Math.min(1000, settings.tickMs),
          onError: (error) => logger.warn({ err: error.message }, "leader lock connection failed"),
        })
      : new EmbeddedLeadership();
  const notifier =
    settings.webhooks.length === 0 ? undefined : new WebhookNotifier({ hooks: settings.webhooks, logger });
  const controller = new RolloutController({
    store: run.store,
    leadership,
    logger,
    id,
    tickMs: settings.tickMs,
    ...(notifier ? { notifier } : {}),
    ...(run.now ? { now: run.now } : {}),
    restore: async (fleet, contentOf, rollbackOf) =>
      (await run.bundles.restore(fleet, contentOf, rollbackOf, { actor: CONTROLLER_ACTOR })).version,
  });
  controller.start();
  logger.info(
    { id, leadership: run.dialect === "postgres" ? "advisory lock" : "embedded" },
    "rollout controller started",
  );
  let closing: Promise<void> | undefined;
  return {
    controller,
    leadership,
    close() {
      closing ??= (async () => {
        await controller.stop();
        await notifier?.flush(2_000);
      })();
      return closing;
    },
  };
}
