/**
 * The Keyring of a managed agent, from its static config's `trusted_keys`: each key given
 * inline or in a file, as SPKI PEM or as a JWK in JSON. Read once at start; a key that cannot
 * be read stops the start, since an agent that trusts nothing could serve nothing.
 */
import { readFile } from "node:fs/promises";
import type { JWK } from "jose";
import { KeyError, KeyErrorCode, Keyring, type TrustedKeySource } from "../../services/bundle/index.js";
import type { ControlPlaneConfig } from "../../services/config/index.js";

type TrustedKey = ControlPlaneConfig["trusted_keys"][number];

export async function keyringFrom(keys: readonly TrustedKey[]): Promise<Keyring> {
  const sources: TrustedKeySource[] = [];
  for (const key of keys) sources.push(sourceOf(key.kid, await keyText(key)));
  return Keyring.from(sources);
}

async function keyText(key: TrustedKey): Promise<string> {
  if (key.public_key !== undefined) return key.public_key;
  const file = key.public_key_file ?? "";
  try {
    return await readFile(file, "utf8");
  } catch (error) {
    throw new KeyError(
      KeyErrorCode.Unreadable,
      `trusted key ${key.kid}: cannot read ${file} (${(error as Error).message})`,
      { cause: error },
    );
  }
}

function sourceOf(kid: string, text: string): TrustedKeySource {
  if (!text.trimStart().startsWith("{")) return { kid, pem: text };
  try {
    return { kid, jwk: JSON.parse(text) as JWK };
  } catch (error) {
    throw new KeyError(KeyErrorCode.Invalid, `trusted key ${kid} is neither a PEM nor a JWK in JSON`, {
      cause: error,
    });
  }
}
