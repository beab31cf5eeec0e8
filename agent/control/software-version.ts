/**
 * The agent's own version, for the Hello (inventory and debugging): the `version` of the
 * nearest package.json above this module, so it is right both from the sources and from
 * dist/. Read once at start.
 */
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export async function softwareVersion(from: string = import.meta.url): Promise<string> {
  let dir = dirname(fileURLToPath(from));
  for (;;) {
    try {
      const manifest = JSON.parse(await readFile(join(dir, "package.json"), "utf8")) as { version?: unknown };
      if (typeof manifest.version === "string") return manifest.version;
    } catch {
      // No (readable) package.json here: look one level up.
    }
    const parent = dirname(dir);
    if (parent === dir) return "unknown";
    dir = parent;
  }
}
