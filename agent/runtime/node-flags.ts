/**
 * The V8 settings the agent runs with: a young generation (semi-space) of 32 MiB instead of
 * V8's 16, held at that size from the start, and no memory reducer.
 *
 * - The size: the agent makes a few short-lived objects per request (its access-log record,
 *   metric and health bookkeeping), and with the default every scavenge pause lands on the
 *   requests in flight. Measured with test/bench/proxy.bench.ts at saturation, both proxies
 *   with the same flags: the agent's p99 went from 9.3 ms to 4.5 ms, the bare Node proxy's
 *   barely moved (4.6 to 4.4 ms).
 * - Held there (`--min-semi-space-size`): V8 otherwise starts the young generation small and
 *   resizes it as it goes, and some processes settled small. Those scavenged so often that
 *   64 KiB response chunks still in flight were promoted; their buffers, freed only by full
 *   GCs, then forced one about twice a second, and each paused the agent's larger heap for
 *   ~10 ms. Streaming 64 KiB answers, such a process had a p99 of 28–32 ms, the others 5–9 ms
 *   (80 full GCs in a run against 6). With the size held, every run stayed at 5–9 ms with one
 *   full GC. The cost is 64 MiB of young generation committed per process from the start.
 * - No memory reducer: after a few idle seconds V8 shrinks the heap and its GC limits; when
 *   load came back, the agent ran full GCs two to eight times a second, ~10 ms each on its
 *   heap. In test/bench/proxy.bench.ts, where each proxy idles between its 4 s rounds, the
 *   agent's p99 at 64 KiB was 25–33 ms in every round against the bare proxy's 7–15 ms; with
 *   this flag it was 5.1–7.5 ms against 7.5–15 ms, and its CPU per request 115 µs instead of
 *   135–139 µs. The heap keeps the size load gave it.
 *
 * V8 reads these only when the process starts, and Node refuses `--no-memory-reducer` in
 * NODE_OPTIONS, so they are given on node's command line: to cluster workers here, to
 * `coherent dev`'s agents, and in deploy/ for agents run by Kubernetes or systemd.
 */
export const AGENT_NODE_FLAGS: readonly string[] = [
  "--max-semi-space-size=32",
  "--min-semi-space-size=32",
  "--no-memory-reducer",
];

/** `execArgv` with the agent's flags added, unless it sets them already. */
export function withAgentNodeFlags(execArgv: readonly string[]): string[] {
  const missing = AGENT_NODE_FLAGS.filter((flag) => {
    const name = flag.split("=")[0] as string;
    return !execArgv.some((arg) => arg === name || arg.startsWith(`${name}=`));
  });
  return [...execArgv, ...missing];
}
