/**
 * /ui: the SREs' read-only dashboard, a few static files (static/) served as they are — no
 * build step, no framework. The page asks for a token once and reads the same /api/v1 as
 * coherentctl, so it can show nothing the token's holder could not read anyway.
 *
 * The files are a fixed list read once at start: no path from a request ever reaches the file
 * system. Every answer carries a Content-Security-Policy that allows only these files and
 * calls to this origin.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { FastifyInstance } from "fastify";

export const UI_PATH = "/ui";

const FILES: Readonly<Record<string, string>> = {
  "index.html": "text/html; charset=utf-8",
  "app.js": "text/javascript; charset=utf-8",
  "api.js": "text/javascript; charset=utf-8",
  "chart.js": "text/javascript; charset=utf-8",
  "style.css": "text/css; charset=utf-8",
  "favicon.svg": "image/svg+xml",
};

export const UI_CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

const HEADERS = {
  "content-security-policy": UI_CONTENT_SECURITY_POLICY,
  "x-content-type-options": "nosniff",
  // The event stream's URL carries the token; no page of ours should hand URLs to others.
  "referrer-policy": "no-referrer",
  "cache-control": "no-cache",
};

export async function registerUiRoutes(app: FastifyInstance): Promise<void> {
  const dir = staticDir();
  const files = new Map<string, { body: Buffer; type: string }>();
  for (const [name, type] of Object.entries(FILES)) {
    files.set(name, { body: await readFile(join(dir, name)), type });
  }
  const index = files.get("index.html")!;
  for (const url of [UI_PATH, `${UI_PATH}/`]) {
    app.get(url, { schema: { hide: true } }, (_req, reply) =>
      reply.headers(HEADERS).type(index.type).send(index.body),
    );
  }
  app.get<{ Params: { file: string } }>(`${UI_PATH}/:file`, { schema: { hide: true } }, (req, reply) => {
    const file = files.get(req.params.file);
    if (!file) return reply.callNotFound();
    return reply.headers(HEADERS).type(file.type).send(file.body);
  });
}

/**
 * Beside this module when run from the sources (tsx, vitest); from dist/, tsc copies no
 * static files, so the sources' copy in the package is used.
 */
function staticDir(): string {
  const here = fileURLToPath(new URL("./static/", import.meta.url));
  if (existsSync(join(here, "index.html"))) return here;
  return fileURLToPath(new URL("../../../authority/ui/static/", import.meta.url));
}
