/**
 * YAML 1.2's core schema for js-yaml: the scalars `yaml` prints and reads. js-yaml's own
 * CORE_SCHEMA also reads YAML 1.1 numbers (0b1, +0x9, 1_000), so a string such as the id
 * "0b1", printed unquoted by `yaml`, would come back as the number 1.
 */
import { FAILSAFE_SCHEMA, Type } from "js-yaml";

const NULL = /^(?:~|null|Null|NULL|)$/;
const BOOL = /^(?:true|True|TRUE|false|False|FALSE)$/;
const INT = /^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$/;
const FLOAT =
  /^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$/;

const scalar = (tag: string, pattern: RegExp, construct: (text: string) => unknown) =>
  new Type(`tag:yaml.org,2002:${tag}`, {
    kind: "scalar",
    resolve: (text: string | null) => pattern.test(text ?? ""),
    construct,
  });

function integer(text: string): number {
  if (text.startsWith("0o")) return Number.parseInt(text.slice(2), 8);
  if (text.startsWith("0x")) return Number.parseInt(text.slice(2), 16);
  return Number(text);
}

function float(text: string): number {
  const lower = text.toLowerCase();
  if (lower.endsWith(".inf"))
    return lower.startsWith("-") ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  if (lower === ".nan") return Number.NaN;
  return Number(text);
}

export const YAML_1_2_CORE = FAILSAFE_SCHEMA.extend({
  implicit: [
    scalar("null", NULL, () => null),
    scalar("bool", BOOL, (text) => text.toLowerCase() === "true"),
    scalar("int", INT, integer),
    scalar("float", FLOAT, float),
  ],
});
