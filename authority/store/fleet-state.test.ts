import { describe, expect, it } from "vitest";
import {
  applyChange,
  downgrade,
  emptyFleetState,
  type FleetStateFields,
  inconsistency,
  parseFleetStateEvent,
  promoted,
  sameFields,
} from "./fleet-state.js";

const stable = (version: number): FleetStateFields => promoted(version);

function rollout(
  stableVersion: number,
  candidateVersion: number,
  percent: number,
  id = "r1",
): FleetStateFields {
  return { stableVersion, candidateVersion, rolloutId: id, candidatePercent: percent };
}

describe("a fleet state", () => {
  it("starts with no stable version at generation 0", () => {
    expect(emptyFleetState("web")).toEqual({
      fleet: "web",
      stableVersion: null,
      candidateVersion: null,
      rolloutId: null,
      candidatePercent: 0,
      generation: 0,
      updatedAt: null,
    });
  });

  it("takes from a change only the fields it sets, null included", () => {
    const during = rollout(2, 3, 10);
    expect(applyChange(during, { candidatePercent: 50 })).toEqual(rollout(2, 3, 50));
    expect(applyChange(during, { candidateVersion: null, rolloutId: null, candidatePercent: 0 })).toEqual(
      stable(2),
    );
    expect(applyChange(during, {})).toEqual(during);
  });

  it("is consistent with a stable version alone, or with a rollout above it", () => {
    expect(inconsistency(stable(1))).toBeUndefined();
    expect(inconsistency(rollout(1, 2, 0))).toBeUndefined();
    expect(inconsistency(rollout(1, 2, 0.07))).toBeUndefined();
    expect(inconsistency(rollout(1, 2, 100))).toBeUndefined();
  });

  it.each([
    [{ ...stable(1), stableVersion: null }, "needs a stable version"],
    [stable(0), "stable version 0 is not a positive integer"],
    [stable(1.5), "not a positive integer"],
    [stable(2 ** 31), "not a positive integer"],
    [rollout(1, 2, 100.5), "candidate percent 100.5 is not between 0 and 100"],
    [rollout(1, 2, -1), "not between 0 and 100"],
    [rollout(1, 2, Number.NaN), "not between 0 and 100"],
    [rollout(1, 2, 5, ""), "a rollout id is not empty"],
    [{ ...rollout(1, 2, 5), rolloutId: null }, "go together"],
    [{ ...stable(1), rolloutId: "r1" }, "go together"],
    [{ ...stable(1), candidatePercent: 5 }, "without a candidate version: it must be 0"],
    [rollout(2, 2, 5), "candidate version 2 is not above the stable version 2"],
    [rollout(3, 2, 5), "not above the stable version 3"],
  ] satisfies Array<[FleetStateFields, string]>)("refuses %o: %s", (fields, problem) => {
    expect(inconsistency(fields)).toContain(problem);
  });

  it("compares by the fields distributors apply", () => {
    expect(sameFields(rollout(1, 2, 10), rollout(1, 2, 10))).toBe(true);
    expect(sameFields(rollout(1, 2, 10), rollout(1, 2, 20))).toBe(false);
    expect(sameFields(rollout(1, 2, 10), rollout(1, 2, 10, "r2"))).toBe(false);
    expect(sameFields(stable(1), stable(2))).toBe(false);
  });
});

describe("a transition", () => {
  it("may start from no state at all, and raise the stable version", () => {
    expect(downgrade(emptyFleetState("web"), stable(1))).toBeUndefined();
    expect(downgrade(stable(1), stable(5))).toBeUndefined();
    expect(downgrade(stable(5), stable(5))).toBeUndefined();
  });

  it("may not lower the stable version", () => {
    expect(downgrade(stable(5), stable(4))).toBe("version 4 is below the stable version 5, which agents run");
  });

  it("may grow a rollout's cohort, or move it to a newer candidate", () => {
    expect(downgrade(stable(1), rollout(1, 2, 1))).toBeUndefined();
    expect(downgrade(rollout(1, 2, 1), rollout(1, 2, 10))).toBeUndefined();
    expect(downgrade(rollout(1, 2, 10), rollout(1, 3, 10))).toBeUndefined();
  });

  it("may not move a kept cohort to an older candidate", () => {
    expect(downgrade(rollout(1, 3, 10), rollout(1, 2, 50))).toBe(
      "candidate version 2 is below 3, which the rollout's agents run",
    );
  });

  it("may end a rollout only on a stable version at least its candidate", () => {
    expect(downgrade(rollout(1, 3, 10), stable(3))).toBeUndefined();
    expect(downgrade(rollout(1, 3, 10), stable(4))).toBeUndefined();
    expect(downgrade(rollout(1, 3, 10), stable(1))).toBe(
      "version 1 is below the candidate version 3, which agents of rollout r1 run",
    );
    expect(downgrade(rollout(1, 3, 10), stable(2))).toContain("below the candidate version 3");
  });

  it("sends agents leaving the cohort to the stable version, which must not be older", () => {
    // A smaller share, or another rollout id, moves some agents out of the cohort.
    expect(downgrade(rollout(1, 3, 50), rollout(1, 3, 10))).toContain("below the candidate version 3");
    expect(downgrade(rollout(1, 3, 10), rollout(1, 4, 10, "r2"))).toContain("rollout r1");
    expect(downgrade(rollout(1, 3, 10), rollout(3, 4, 10, "r2"))).toBeUndefined();
  });
});

describe("a fleet state event", () => {
  it("is read from its payload, and anything else is ignored", () => {
    expect(parseFleetStateEvent('{"fleet":"web","generation":3}')).toEqual({ fleet: "web", generation: 3 });
    expect(parseFleetStateEvent('{"fleet":"web","generation":"3"}')).toBeUndefined();
    expect(parseFleetStateEvent("null")).toBeUndefined();
    expect(parseFleetStateEvent("{not json")).toBeUndefined();
  });
});
