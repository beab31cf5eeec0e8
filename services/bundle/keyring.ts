/**
 * The public keys a verifier trusts, by kid. Several are trusted at once so a key can be
 * rotated without a gap: sign with the new one while agents still trust the old. A retired
 * key stays listed so a refusal can say so, but verifies nothing.
 */
import { createPublicKey, type KeyObject } from "node:crypto";
import type { JWK } from "jose";
import { publicJwkOf } from "./ed25519.js";
import { KeyError, KeyErrorCode } from "./errors.js";

/** "active" (the authority's signing key) is trusted like any other. */
export type TrustedKeyStatus = "active" | "trusted" | "retired";

export interface TrustedKeySource {
  /** When given, must be the key's RFC 7638 thumbprint: a kid cannot be chosen freely. */
  readonly kid?: string;
  readonly jwk?: JWK;
  /** SPKI PEM (`-----BEGIN PUBLIC KEY-----`). */
  readonly pem?: string;
  readonly status?: TrustedKeyStatus;
}

export class Keyring {
  readonly #trusted: ReadonlyMap<string, KeyObject>;
  readonly #retired: ReadonlySet<string>;

  private constructor(trusted: ReadonlyMap<string, KeyObject>, retired: ReadonlySet<string>) {
    this.#trusted = trusted;
    this.#retired = retired;
  }

  /** Throws a KeyError for a key that is not Ed25519, unreadable, or listed under a wrong kid. */
  static async from(publics: ReadonlyArray<TrustedKeySource>): Promise<Keyring> {
    const trusted = new Map<string, KeyObject>();
    const retired = new Set<string>();
    for (const [index, source] of publics.entries()) {
      const where = `trusted key ${source.kid ?? `#${index + 1}`}`;
      const key = publicKeyOf(source, where);
      const { kid } = await publicJwkOf(key, where);
      if (source.kid !== undefined && source.kid !== kid) {
        throw new KeyError(
          KeyErrorCode.KidMismatch,
          `${where}: the key's thumbprint is ${kid}; list it under that kid (kids are RFC 7638 thumbprints)`,
        );
      }
      if (source.status === "retired") retired.add(kid);
      else trusted.set(kid, key);
    }
    // Listed both ways, a key is retired: when in doubt, trust less.
    for (const kid of retired) trusted.delete(kid);
    return new Keyring(trusted, retired);
  }

  /** The key that verifies bundles signed under `kid`; undefined for an unknown or retired kid. */
  get(kid: string): KeyObject | undefined {
    return this.#trusted.get(kid);
  }

  /** The kids that verify, in the order they were listed. */
  kids(): string[] {
    return [...this.#trusted.keys()];
  }

  isRetired(kid: string): boolean {
    return this.#retired.has(kid);
  }
}

function publicKeyOf(source: TrustedKeySource, where: string): KeyObject {
  if ((source.jwk === undefined) === (source.pem === undefined)) {
    throw new KeyError(KeyErrorCode.NoSource, `${where}: give exactly one of jwk or pem`);
  }
  if (source.jwk?.d !== undefined || source.pem?.includes("PRIVATE KEY")) {
    throw new KeyError(
      KeyErrorCode.WrongType,
      `${where} is a private key; a verifier needs only the public half (the .pub.pem file), keep the private one with the authority`,
    );
  }
  try {
    return source.jwk === undefined
      ? createPublicKey(source.pem ?? "")
      : createPublicKey({ key: { ...source.jwk }, format: "jwk" });
  } catch (err) {
    throw new KeyError(
      KeyErrorCode.Invalid,
      `${where} is not a readable public key (${(err as Error).message}); expected an Ed25519 JWK or SPKI PEM`,
      { cause: err },
    );
  }
}
