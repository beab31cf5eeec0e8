#!/usr/bin/env node
// `npm start` until the whole system lands ([8/9]): the agent on deploy/examples/config.yaml,
// with demo upstream services on the ports that config names. Ctrl-C stops everything.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import { join } from "node:path";

const root = join(import.meta.dirname, "..");
const upstreams = [
  [9001, "api-1"],
  [9002, "api-2"],
  [9003, "api-canary"],
  [9004, "static"],
];
const servers = upstreams.map(([port, name]) =>
  createServer((req, res) => {
    res.writeHead(200, { "content-type": "application/json", "x-upstream": name });
    res.end(JSON.stringify({ upstream: name, method: req.method, path: req.url }));
  }).listen(port, "127.0.0.1"),
);

const token = process.env.PROXY_ADMIN_TOKEN ?? randomBytes(18).toString("base64url");
const agent = spawn(
  process.execPath,
  [
    join(root, "dist/agent/main.js"),
    "--config",
    join(root, "deploy/examples/config.yaml"),
    "--static-config",
    join(root, "deploy/examples/static.yaml"),
    "--admin",
    "127.0.0.1:9090",
  ],
  {
    stdio: ["ignore", "inherit", "inherit"],
    env: { ...process.env, PROXY_ADMIN_TOKEN: token, PROXY_METRICS_ADDRESS: "127.0.0.1:9091" },
  },
);

console.error(`
  Coherent agent demo
  proxy      http://127.0.0.1:8080   try: curl -H "Host: api.example.com" http://127.0.0.1:8080/v1/users
  admin API  http://127.0.0.1:9090   token: ${token}
             curl -H "Authorization: Bearer ${token}" http://127.0.0.1:9090/api/v2/config/current
  metrics    http://127.0.0.1:9091/metrics
  Edit deploy/examples/config.yaml and the agent reloads it. Ctrl-C stops.
`);

const stop = () => agent.kill("SIGTERM");
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
agent.on("exit", (code) => {
  for (const server of servers) server.close();
  process.exit(code ?? 0);
});
