/**
 * The managed agent's one path from a signed bundle to the config it serves: verify (fail
 * closed, with the running version as floor), check the distributor's hints against the
 * signed payload, validate, apply through the ConfigTarget, and keep it as the last good
 * bundle. Every BundleUpdate ends in exactly one Ack or Nack; a refused bundle changes
 * nothing and the previous config keeps serving.
 *
 * Updates are applied one at a time by the caller (one stream loop), so `current` is never
 * read while it is being changed.
 */
import type { ConfigError } from "../../proto/coherent/v1/common.js";
import type { AgentMessage, BundleUpdate } from "../../proto/coherent/v1/distribution.js";
import { BundleError, type BundlePayload, type Keyring, verifyBundle } from "../../services/bundle/index.js";
import { type ConfigIssue, validateDynamicConfig } from "../../services/config/index.js";
import type { Logger } from "../../services/telemetry/logger.js";
import type { ConfigTarget } from "../runtime/config-target.js";
import type { LastGoodBundle } from "./last-good-bundle.js";
import { NackCode } from "./nack-codes.js";

/** The bundle serving now, as the Hello reports it. */
export interface CurrentBundle {
  readonly version: number;
  readonly contentSha256: string;
  readonly jws: string;
}

export interface BundleApplierOptions {
  readonly fleet: string;
  readonly keyring: Keyring;
  readonly target: ConfigTarget;
  /** Undefined without a state_dir: nothing survives a restart. */
  readonly lastGood: LastGoodBundle | undefined;
  readonly logger: Logger;
}

export class BundleApplier {
  readonly #options: BundleApplierOptions;
  #current: CurrentBundle | undefined;

  constructor(options: BundleApplierOptions) {
    this.#options = options;
  }

  get current(): CurrentBundle | undefined {
    return this.#current;
  }

  /**
   * Called once at start, before any distributor is asked: serves the persisted bundle when
   * there is one that still verifies. False when there was none or it was refused (logged);
   * the agent then waits for a distributor.
   */
  async restore(): Promise<boolean> {
    const { lastGood, keyring, fleet, logger } = this.#options;
    if (!lastGood) return false;
    let saved: { jws: string; payload: BundlePayload } | undefined;
    try {
      saved = await lastGood.load(keyring, fleet);
    } catch (error) {
      logger.error({ err: error, file: lastGood.path }, "last good bundle refused, not served");
      return false;
    }
    if (!saved) return false;
    let errors: ConfigError[] | undefined;
    try {
      errors = await this.#serve(saved.payload, saved.jws, `last good bundle v${saved.payload.version}`);
    } catch (error) {
      errors = [{ path: "", code: NackCode.Internal, message: (error as Error).message }];
    }
    if (errors) {
      logger.error({ errors, version: saved.payload.version }, "last good bundle cannot be served");
      return false;
    }
    logger.info({ version: saved.payload.version }, "serving the last good bundle");
    return true;
  }

  /** The Ack or Nack answering `update`, once it is served or refused. */
  async apply(update: BundleUpdate, distributor: string): Promise<AgentMessage> {
    const jws = Buffer.from(update.signedBundle).toString("latin1");
    const running = this.#current;
    // The same push again (after a reconnect): already verified and serving, nothing to do.
    if (running && running.version === update.version && running.jws === jws)
      return ack(update, running.contentSha256);

    let payload: BundlePayload;
    try {
      payload = await verifyBundle(jws, {
        keyring: this.#options.keyring,
        fleet: this.#options.fleet,
        ...(running ? { floor: running.version } : {}),
      });
    } catch (error) {
      return nack(update, [bundleErrorOf(error)]);
    }
    const mismatches = hintMismatches(update, payload);
    if (mismatches.length > 0) return nack(update, mismatches);

    let errors: ConfigError[] | undefined;
    try {
      errors = await this.#serve(payload, jws, `bundle v${payload.version} from ${distributor}`);
    } catch (error) {
      // Not the bundle's fault (the target failed); still answered, so the push is not left hanging.
      errors = [{ path: "", code: NackCode.Internal, message: (error as Error).message }];
    }
    return errors ? nack(update, errors) : ack(update, payload.content_sha256);
  }

  /** Undefined once served; otherwise every reason it was not, with its path. */
  async #serve(payload: BundlePayload, jws: string, source: string): Promise<ConfigError[] | undefined> {
    const validated = validateDynamicConfig(payload.config);
    if (!validated.ok) return validated.errors.map(configErrorOf);
    const result = await this.#options.target.applyValidated(validated.value, source, payload.version);
    if (result.status === "rejected") return result.errors.map(configErrorOf);
    this.#current = { version: payload.version, contentSha256: payload.content_sha256, jws };
    await this.#persist(jws);
    return undefined;
  }

  async #persist(jws: string): Promise<void> {
    const { lastGood, logger } = this.#options;
    try {
      await lastGood?.save(jws);
    } catch (error) {
      // The bundle serves; only a restart without any distributor would miss it.
      logger.error({ err: error, file: lastGood?.path }, "cannot keep the last good bundle");
    }
  }
}

function ack(update: BundleUpdate, contentSha256: string): AgentMessage {
  return { kind: { $case: "ack", value: { version: update.version, nonce: update.nonce, contentSha256 } } };
}

function nack(update: BundleUpdate, errors: ConfigError[]): AgentMessage {
  return { kind: { $case: "nack", value: { version: update.version, nonce: update.nonce, errors } } };
}

function bundleErrorOf(error: unknown): ConfigError {
  if (error instanceof BundleError)
    return { path: "signed_bundle", code: error.code, message: error.message };
  return { path: "signed_bundle", code: NackCode.Internal, message: (error as Error).message };
}

function configErrorOf(issue: ConfigIssue): ConfigError {
  return {
    path: issue.path === "" ? "config" : `config.${issue.path}`,
    code: issue.code,
    message: issue.message,
  };
}

function hintMismatches(update: BundleUpdate, payload: BundlePayload): ConfigError[] {
  const errors: ConfigError[] = [];
  const check = (field: string, hint: string | number, signed: string | number) => {
    if (hint !== signed)
      errors.push({
        path: field,
        code: NackCode.HintMismatch,
        message: `the update says ${field} ${JSON.stringify(hint)}, the signed bundle ${JSON.stringify(signed)}`,
      });
  };
  check("fleet", update.fleet, payload.fleet);
  check("version", update.version, payload.version);
  check("content_sha256", update.contentSha256, payload.content_sha256);
  return errors;
}
