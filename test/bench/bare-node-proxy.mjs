// The Node ceiling for test/bench/proxy.bench.ts: the least a Node reverse proxy must do — a
// node:http server, an undici Pool, hop-by-hop headers dropped both ways, the body streamed
// with back-pressure — and nothing else (no routing, policy, logs or metrics). What the agent
// costs above this is ours to explain; what this costs is Node's.
//
// It uses undici's dispatch with a handler, as the agent does: pool.request would add a
// Readable per response, and stream.pipeline an AbortController (and a DOMException when it
// finishes), which would raise the ceiling by costs no proxy has to pay.
//
//   node test/bench/bare-node-proxy.mjs LISTEN_PORT UPSTREAM_HOST:PORT
import { createServer } from "node:http";
import { Pool } from "undici";

const [port, upstream] = process.argv.slice(2);
// Same pool settings as the agent's (unbounded connections, no pipelining) so both pay alike.
const pool = new Pool(`http://${upstream}`, { connections: null, pipelining: 1, keepAliveTimeout: 60_000 });
const HOP = ["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"];

/** A copy of `headers` without hop-by-hop ones, those named in Connection included. */
function endToEnd(headers) {
  const out = { ...headers };
  const named = typeof headers.connection === "string" ? headers.connection.split(",") : [];
  for (const name of [...HOP, ...named.map((n) => n.trim().toLowerCase())]) delete out[name];
  return out;
}

createServer((req, res) => {
  const hasBody =
    req.headers["content-length"] !== undefined || req.headers["transfer-encoding"] !== undefined;
  const request = {
    method: req.method,
    path: req.url,
    headers: endToEnd(req.headers),
    body: hasBody ? req : null,
  };
  pool.dispatch(request, {
    onRequestStart() {},
    onResponseStart(_controller, status, headers) {
      res.writeHead(status, endToEnd(headers));
    },
    onResponseData(controller, chunk) {
      if (res.write(chunk)) return;
      controller.pause();
      res.once("drain", () => controller.resume());
    },
    onResponseEnd() {
      res.end();
    },
    onResponseError() {
      if (res.headersSent) res.destroy();
      else res.writeHead(502, { "content-length": "0" }).end();
    },
  });
}).listen(Number(port), "127.0.0.1", () => process.stdout.write("listening\n"));
