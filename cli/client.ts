/**
 * coherentctl's client for the authority's operator API. Where the authority is and which
 * token to send come from the flag, else its COHERENT_* environment variable (both collected
 * by commander), else the config file (COHERENT_CONFIG or ~/.config/coherent/config.yaml:
 * `{server, token}`). Every error answer becomes an ApiError whose message is meant for the
 * operator and whose exit code is 3 for a rejected config, 2 for a rejected request, 1 otherwise.
 */
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { Agent, request } from "undici";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { CliError } from "./commands/run.js";
import { ExitCode } from "./exit-codes.js";

export const DEFAULT_SERVER = "http://127.0.0.1:7400";
const API_PREFIX = "/api/v1";
const TIMEOUT_MS = 30_000;

/** The connection flags as commander collected them, environment variables included. */
export interface ConnectionFlags {
  readonly server?: string;
  readonly token?: string;
  readonly config?: string;
}

export interface Connection {
  readonly server: string;
  readonly token?: string;
}

export const ClientConfigFileSchema = z.strictObject({
  server: z
    .string()
    .optional()
    .describe("The authority's URL; --server and COHERENT_SERVER win (default http://127.0.0.1:7400)"),
  token: z.string().min(1).optional().describe("An API token; --token and COHERENT_TOKEN win"),
});

export function defaultConfigFile(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_CONFIG_HOME || join(homedir(), ".config"), "coherent", "config.yaml");
}

/** Fills what the flags leave open from the config file; a file named explicitly must exist. */
export async function resolveConnection(
  flags: ConnectionFlags,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Connection> {
  const file = await readConfigFile(flags.config ?? defaultConfigFile(env), flags.config !== undefined);
  const server = flags.server ?? file.server ?? DEFAULT_SERVER;
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new CliError(`--server "${server}" is not a URL: use e.g. ${DEFAULT_SERVER}`, ExitCode.Usage);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new CliError(`--server "${server}" must be an http:// or https:// URL`, ExitCode.Usage);
  }
  const token = flags.token ?? file.token;
  return { server: url.origin + url.pathname.replace(/\/+$/, ""), ...(token ? { token } : {}) };
}

async function readConfigFile(
  path: string,
  required: boolean,
): Promise<z.infer<typeof ClientConfigFileSchema>> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if (!required && (err as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw new CliError(`cannot read the config file ${path}: ${(err as Error).message}`);
  }
  let parsed: z.ZodSafeParseResult<z.infer<typeof ClientConfigFileSchema>>;
  try {
    parsed = ClientConfigFileSchema.safeParse(parseYaml(text) ?? {});
  } catch (err) {
    throw new CliError(`the config file ${path} is not YAML: ${(err as Error).message}`, ExitCode.Usage);
  }
  if (!parsed.success) {
    const problems = parsed.error.issues.map(
      (issue) => `${issue.path.join(".") || "(root)"}: ${issue.message}`,
    );
    throw new CliError(
      `the config file ${path} is wrong (${problems.join("; ")}): it holds only server and token`,
      ExitCode.Usage,
    );
  }
  return parsed.data;
}

/** An error answer of the API: `{"error": code, "message", ...}` as the authority sends it. */
export class ApiError extends CliError {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
    readonly body: Readonly<Record<string, unknown>>,
  ) {
    super(message, exitCodeFor(code));
    this.name = "ApiError";
  }
}

function exitCodeFor(code: string): ExitCode {
  if (code === "validation_failed") return ExitCode.Invalid;
  if (code === "bad_request") return ExitCode.Usage;
  return ExitCode.Failure;
}

export type Query = Readonly<Record<string, string | number | undefined>>;

export interface AuthorityClient {
  /**
   * Sends one request to `/api/v1{path}` and resolves with a 2xx answer's status and JSON
   * body (its shape is the API's, taken on trust); throws ApiError for an error answer and
   * CliError when the authority cannot be reached.
   */
  request<T>(
    method: "GET" | "POST" | "DELETE",
    path: string,
    options?: { query?: Query; body?: unknown },
  ): Promise<{ status: number; body: T }>;
  close(): Promise<void>;
}

export function createClient(connection: Connection): AuthorityClient {
  // A dispatcher of our own, closed at the end, so no idle keep-alive socket holds the process open.
  const dispatcher = new Agent({ headersTimeout: TIMEOUT_MS, bodyTimeout: TIMEOUT_MS });
  const headers: Record<string, string> = { accept: "application/json" };
  if (connection.token) headers.authorization = `Bearer ${connection.token}`;

  return {
    async request<T>(
      method: "GET" | "POST" | "DELETE",
      path: string,
      options: { query?: Query; body?: unknown } = {},
    ) {
      const url = new URL(`${connection.server}${API_PREFIX}${path}`);
      for (const [name, value] of Object.entries(options.query ?? {})) {
        if (value !== undefined) url.searchParams.set(name, String(value));
      }
      let response: Awaited<ReturnType<typeof request>>;
      try {
        response = await request(url, {
          method,
          dispatcher,
          headers: options.body === undefined ? headers : { ...headers, "content-type": "application/json" },
          ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
        });
      } catch (err) {
        throw new CliError(
          `cannot reach the authority at ${connection.server}: ${describeNetworkError(err)} (set --server or COHERENT_SERVER)`,
        );
      }
      const text = await response.body.text();
      const body = parseJson(text);
      if (response.statusCode >= 200 && response.statusCode < 300) {
        return { status: response.statusCode, body: body as T };
      }
      throw apiError(response.statusCode, body, connection);
    },
    close: () => dispatcher.close(),
  };
}

/** Runs `work` with a client for the resolved connection and closes it afterwards. */
export async function withClient<T>(
  flags: ConnectionFlags,
  work: (client: AuthorityClient) => Promise<T>,
): Promise<T> {
  const client = createClient(await resolveConnection(flags));
  try {
    return await work(client);
  } finally {
    await client.close();
  }
}

function parseJson(text: string): unknown {
  if (text === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function apiError(status: number, body: unknown, connection: Connection): ApiError {
  if (typeof body !== "object" || body === null || typeof (body as { error?: unknown }).error !== "string") {
    const detail = typeof body === "string" && body !== "" ? `: ${body.slice(0, 200)}` : "";
    return new ApiError(`the authority answered ${status}${detail}`, status, "unexpected_answer", {});
  }
  const fields = body as Record<string, unknown> & { error: string };
  const code = fields.error;
  const detail = typeof fields.message === "string" ? fields.message : code;
  return new ApiError(messageFor(code, detail, fields, connection), status, code, fields);
}

/** The operator's view of an error: what went wrong and, where there is one, the fix. */
function messageFor(
  code: string,
  detail: string,
  fields: Record<string, unknown>,
  connection: Connection,
): string {
  switch (code) {
    case "unauthorized":
      return connection.token
        ? "the authority refused the token (unauthorized): it is unknown or revoked; check --token or COHERENT_TOKEN"
        : "no token (unauthorized): pass --token, set COHERENT_TOKEN, or add token: to the config file";
    case "forbidden":
      return `this needs a token with the ${String(fields.required_role ?? "a higher")} role (forbidden)`;
    default:
      return `${detail} (${code})`;
  }
}

function describeNetworkError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  const message = (err as Error).message;
  return code && !message.includes(code) ? `${message} (${code})` : message;
}
