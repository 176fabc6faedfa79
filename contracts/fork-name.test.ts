import { describe, expect, it } from "vitest";
import { RUN_NAME_MAX, proposedForkName } from "./fork-name";

describe("proposedForkName", () => {
  it("names what the run is a fork of", () => {
    expect(proposedForkName({ id: 12, name: "iris baseline" })).toBe("iris baseline · fork of #12");
  });
  it("shortens a long parent name so the proposal fits a run name", () => {
    const name = proposedForkName({ id: 4567, name: "x".repeat(200) });
    expect(name).toHaveLength(RUN_NAME_MAX);
    expect(name.endsWith("… · fork of #4567")).toBe(true);
  });
});
