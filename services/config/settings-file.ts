/**
 * A process's settings file (the authority's, a distributor's): YAML or JSON read as the
 * configs are, then checked against the component's schema, with every problem named by its
 * path in one error.
 */
import { readFile } from "node:fs/promises";
import type { z } from "zod";
import { readConfigText } from "./source.js";

export class SettingsFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SettingsFileError";
  }
}

/** `what` names the file in errors: "authority config", "distributor config". */
export async function readSettingsFile<S extends z.ZodType>(
  path: string,
  schema: S,
  what: string,
): Promise<z.output<S>> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new SettingsFileError(`cannot read the ${what} ${path}: ${(error as Error).message}`);
  }
  const source = readConfigText(text);
  if (!source.ok) {
    throw new SettingsFileError(`${path}: ${source.errors.map((e) => e.message).join("; ")}`);
  }
  const parsed = schema.safeParse(source.value.data);
  if (!parsed.success) {
    const issues = parsed.error.issues.map(
      (issue) => `${issue.path.join(".") || "(root)"}: ${issue.message}`,
    );
    throw new SettingsFileError(`invalid ${what} ${path}: ${issues.join("; ")}`);
  }
  return parsed.data;
}
