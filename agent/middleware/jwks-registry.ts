/**
 * Remote JSON Web Key Sets for JWT auth stages, by where they come from (a `jwks_uri`, or an
 * issuer's OpenID discovery document), kept across snapshots so a config change does not
 * refetch keys. Fetching and key selection are jose's `createRemoteJWKSet`; this adds what a
 * proxy needs on top:
 *
 * - **Fetched ahead**: an entry starts fetching when it is made, at config time, rather than
 *   on the first request.
 * - **Stale keys over no keys**: jose would block a request on a refetch once its cache is
 *   `cacheMaxAge` old, and fail it if the fetch fails. Here jose's cache never expires; a
 *   request that needs keys older than `refreshInterval` starts a refresh in the background
 *   and is verified with the keys at hand, which stay until a fetch succeeds.
 * - **Unknown `kid`**: jose refetches at once and retries the token, but only when its last
 *   successful fetch is at least `cooldownDuration` (here `cooldown`, 30 s) old; concurrent
 *   requests share one fetch. So a key the issuer adds is usable at most `cooldown` after
 *   the previous fetch, and tokens with made-up `kid`s cost the issuer at most one fetch per
 *   `cooldown`. Within the cooldown such a token is refused without a fetch.
 * - **Backoff**: after a failed fetch, no fetch is made for `cooldown`; requests that need
 *   keys not held fail at once instead of each waiting for a timeout. One warning per outage.
 */
import {
  createRemoteJWKSet,
  customFetch,
  type FetchImplementation,
  type JWTVerifyGetKey,
  type RemoteJWKSet,
} from "jose";
import type { Logger } from "../../services/telemetry/logger.js";

export type JwksSource = { readonly uri: string } | { readonly issuer: string };

export interface JwksSettings {
  /** Keys older than this are refreshed in the background when a request needs them. */
  readonly refreshInterval: number;
  /** Least time between a fetch and an unknown kid's refetch, and after a failed fetch. */
  readonly cooldown: number;
  /** One fetch's time limit. */
  readonly timeout: number;
}

export const DEFAULT_JWKS_SETTINGS: JwksSettings = {
  refreshInterval: 10 * 60_000,
  cooldown: 30_000,
  timeout: 5_000,
};

/** Signing keys could not be fetched; the token itself may be fine. */
export class JwksUnavailableError extends Error {
  readonly code = "JWKS_UNAVAILABLE";
}

export interface JwksRegistryOptions {
  readonly logger: Pick<Logger, "warn" | "info">;
  readonly settings?: Partial<JwksSettings>;
  readonly now?: () => number;
  readonly fetch?: typeof fetch;
}

/** The registry key of a source, for `retain`. */
export function jwksKey(source: JwksSource): string {
  return "uri" in source ? `uri:${source.uri}` : `issuer:${source.issuer}`;
}

export class JwksRegistry {
  readonly #entries = new Map<string, RemoteJwks>();
  readonly #settings: JwksSettings;

  constructor(private readonly options: JwksRegistryOptions) {
    this.#settings = { ...DEFAULT_JWKS_SETTINGS, ...options.settings };
  }

  /** The key set of this source, made (and its first fetch started) if it is new. */
  jwksFor(source: JwksSource): RemoteJwks {
    const key = jwksKey(source);
    let entry = this.#entries.get(key);
    if (!entry) {
      entry = new RemoteJwks(
        source,
        this.#settings,
        this.options.logger,
        this.options.now ?? Date.now,
        this.options.fetch ?? fetch,
      );
      this.#entries.set(key, entry);
    }
    return entry;
  }

  /** Drops the key sets no compiled chain uses (see `jwksKey`). */
  retain(keys: ReadonlySet<string>): void {
    for (const key of this.#entries.keys()) if (!keys.has(key)) this.#entries.delete(key);
  }
}

export class RemoteJwks {
  #set: RemoteJWKSet | undefined;
  readonly #issuer: string | undefined;
  #discovery: Promise<RemoteJWKSet> | undefined;
  #fetchedAt = Number.NEGATIVE_INFINITY;
  #attemptedAt = Number.NEGATIVE_INFINITY;
  #failedAt = Number.NEGATIVE_INFINITY;
  #failing = false;

  constructor(
    readonly source: JwksSource,
    private readonly settings: JwksSettings,
    private readonly logger: Pick<Logger, "warn" | "info">,
    private readonly now: () => number,
    private readonly fetchImpl: typeof fetch,
  ) {
    if ("uri" in source) this.#set = this.#remote(new URL(source.uri));
    else this.#issuer = source.issuer;
    this.#keys()
      .then((set) => set.reload())
      .catch(ignore);
  }

  /** The key resolver for jose's jwtVerify. */
  readonly getKey: JWTVerifyGetKey = async (header, token) => {
    const set = await this.#keys();
    const now = this.now();
    if (
      set.fresh &&
      !set.reloading &&
      now - this.#fetchedAt >= this.settings.refreshInterval &&
      now - this.#attemptedAt >= this.settings.cooldown
    ) {
      set.reload().catch(ignore);
    }
    return set(header, token);
  };

  #keys(): Promise<RemoteJWKSet> {
    if (this.#set) return Promise.resolve(this.#set);
    this.#discovery ??= this.#discover(this.#issuer!).finally(() => {
      this.#discovery = undefined;
    });
    return this.#discovery;
  }

  /** OpenID Connect Discovery 1.0 §4: the document must name the issuer it was asked for. */
  async #discover(issuer: string): Promise<RemoteJWKSet> {
    const url = `${issuer.replace(/\/$/, "")}/.well-known/openid-configuration`;
    const response = await this.#fetch(url, {
      method: "GET",
      headers: new Headers({ accept: "application/json" }),
      redirect: "manual",
      signal: AbortSignal.timeout(this.settings.timeout),
    });
    let jwksUri: URL;
    try {
      const doc = (await response.json()) as { issuer?: unknown; jwks_uri?: unknown };
      if (doc.issuer !== issuer) throw new Error(`the document names issuer ${String(doc.issuer)}`);
      if (typeof doc.jwks_uri !== "string") throw new Error("the document has no jwks_uri");
      jwksUri = new URL(doc.jwks_uri);
    } catch (error) {
      throw this.#failed(url, error);
    }
    this.#set = this.#remote(jwksUri);
    return this.#set;
  }

  #remote(url: URL): RemoteJWKSet {
    return createRemoteJWKSet(url, {
      cooldownDuration: this.settings.cooldown,
      cacheMaxAge: Number.POSITIVE_INFINITY,
      timeoutDuration: this.settings.timeout,
      [customFetch]: this.#fetch,
    });
  }

  /** Every fetch of this source, discovery included: backoff, and the outage's log lines. */
  readonly #fetch: FetchImplementation = async (url, init) => {
    const now = this.now();
    if (now - this.#failedAt < this.settings.cooldown) {
      throw new JwksUnavailableError(`fetching ${url} failed less than ${this.settings.cooldown} ms ago`);
    }
    this.#attemptedAt = now;
    let response: Response;
    try {
      response = await this.fetchImpl(url, init);
    } catch (error) {
      throw this.#failed(url, error);
    }
    if (response.status !== 200) {
      await response.body?.cancel();
      throw this.#failed(url, new Error(`HTTP status ${response.status}`));
    }
    this.#fetchedAt = this.now();
    if (this.#failing) {
      this.#failing = false;
      this.logger.info({ event: "jwks_recovered", url }, "signing keys fetched again");
    }
    return response;
  };

  #failed(url: string, error: unknown): JwksUnavailableError {
    this.#failedAt = this.now();
    if (!this.#failing) {
      this.#failing = true;
      this.logger.warn(
        { event: "jwks_unavailable", url, error: String(error) },
        "cannot fetch signing keys: tokens signed with keys not held are refused",
      );
    }
    return new JwksUnavailableError(`cannot fetch ${url}`, { cause: error });
  }
}

function ignore(): void {}
