/**
 * The V8 settings the agent runs with. A young generation (semi-space) of 32 MiB instead of
 * V8's 16: the agent makes a few short-lived objects per request (its access-log record,
 * metric and health bookkeeping), and with the default every scavenge pause lands on the
 * requests in flight. Measured with test/bench/proxy.bench.ts at saturation, both proxies with
 * the same flags: the agent's p99 went from 9.3 ms to 4.5 ms, the bare Node proxy's barely
 * moved (4.6 to 4.4 ms). V8 reads the flag only when the process starts, so it is given on
 * the command line: to cluster workers here, to `coherent dev`'s agents, and in deploy/
 * (NODE_OPTIONS) for agents run by Kubernetes or systemd.
 */
export const AGENT_NODE_FLAGS: readonly string[] = ["--max-semi-space-size=32"];

/** `execArgv` with the agent's flags added, unless it sets them already. */
export function withAgentNodeFlags(execArgv: readonly string[]): string[] {
  const missing = AGENT_NODE_FLAGS.filter((flag) => {
    const name = flag.split("=")[0] as string;
    return !execArgv.some((arg) => arg === name || arg.startsWith(`${name}=`));
  });
  return [...execArgv, ...missing];
}
