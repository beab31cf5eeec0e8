/**
 * Figures of the fault, security and scale suites, for `npm run report:reliability`. Every
 * scenario prints its record; when COHERENT_RELIABILITY_DIR is set (the report sets it), the
 * record is also written there as one JSON file per scenario, which the report turns into a
 * table. A scenario that lost a request or a bundle fails its own test: the record is what
 * was measured, not the verdict.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface ReliabilityRecord {
  /** "fault", "security" or "scale". */
  readonly suite: "fault" | "security" | "scale";
  readonly scenario: string;
  /** The load kept up during the scenario, in words: "4 agents, ~200 req/s", or "none". */
  readonly loadHeld: string;
  readonly faultsInjected: number;
  readonly badInputsTried: number;
  readonly requestsSent: number;
  readonly requestsFailed: number;
  readonly bundlesLost: number;
  /** From the fault's end until every agent ran the desired version; undefined when not measured. */
  readonly convergenceMs?: number;
  /** Anything else worth a column's footnote: "p99 12 ms", "RSS +3%". */
  readonly notes?: string;
}

export function reportReliability(record: ReliabilityRecord): void {
  const convergence = record.convergenceMs === undefined ? "" : `, converged in ${record.convergenceMs} ms`;
  console.log(
    `[reliability] ${record.suite} / ${record.scenario}: load ${record.loadHeld}; ${record.faultsInjected} faults, ${record.badInputsTried} bad inputs; ${record.requestsFailed}/${record.requestsSent} requests failed, ${record.bundlesLost} bundles lost${convergence}${record.notes ? ` (${record.notes})` : ""}`,
  );
  const dir = process.env.COHERENT_RELIABILITY_DIR;
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  const file = `${record.suite}-${record.scenario.replace(/[^a-z0-9]+/gi, "-").toLowerCase()}.json`;
  writeFileSync(join(dir, file), `${JSON.stringify(record, null, 2)}\n`);
}
