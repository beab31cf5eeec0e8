/**
 * The config file as a source of changes: read and parsed on start, on every change of the
 * file and on SIGHUP. Editors and config managers replace files by rename, so the directory is
 * watched, not the file; bursts of events are folded into one reload.
 */
import { type FSWatcher, watch } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename, dirname } from "node:path";
import { type ConfigIssue, type DynamicConfig, parseDynamicConfig } from "../../services/config/index.js";

const SETTLE_MS = 150;

export type ConfigRead = { ok: true; config: DynamicConfig } | { ok: false; errors: readonly ConfigIssue[] };

export async function readConfigFile(file: string): Promise<ConfigRead> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    return {
      ok: false,
      errors: [
        { code: "config_syntax", path: "", message: `cannot read ${file}: ${(error as Error).message}` },
      ],
    };
  }
  const parsed = parseDynamicConfig(text);
  return parsed.ok ? { ok: true, config: parsed.value } : { ok: false, errors: parsed.errors };
}

/** Calls `onChange` after the file changed (and settled); returns a function that stops watching. */
export function watchConfigFile(file: string, onChange: () => void): () => void {
  const name = basename(file);
  let timer: NodeJS.Timeout | undefined;
  let watcher: FSWatcher | undefined = watch(dirname(file), (_event, changed) => {
    if (changed !== null && changed !== name) return;
    clearTimeout(timer);
    timer = setTimeout(onChange, SETTLE_MS);
  });
  watcher.on("error", () => undefined);
  return () => {
    clearTimeout(timer);
    watcher?.close();
    watcher = undefined;
  };
}
