import { describe, expect, it } from "vitest";
import { versionsText } from "./versions-text";

describe("versionsText (run page, Versions)", () => {
  it("shows the app version and its commit", () => {
    expect(
      versionsText({ tfjs: "4.22.0", node: "v22.1.0", appVersion: "0.1.0", appCommit: "335fb6b7c61a56cded969136bbab3de159a3b97c" }),
    ).toBe("tfjs 4.22.0 · node v22.1.0 · app 0.1.0 (335fb6b7c6)");
  });
  it("shows the version alone when no commit was recorded", () => {
    expect(versionsText({ tfjs: "4.22.0", node: "v22.1.0", appVersion: "0.1.0" })).toBe("tfjs 4.22.0 · node v22.1.0 · app 0.1.0");
  });
  it("never shows 'unknown' for a run recorded before the version was (its record unchanged)", () => {
    const recorded = { tfjs: "4.22.0", node: "v22.1.0", appCommit: "unknown" };
    expect(versionsText(recorded)).toBe("tfjs 4.22.0 · node v22.1.0 · app version not recorded");
    expect(recorded.appCommit).toBe("unknown");
    expect(versionsText({ tfjs: "4.22.0", node: "v22.1.0", appCommit: "335fb6b7c61a56cded969136bbab3de159a3b97c" })).toBe(
      "tfjs 4.22.0 · node v22.1.0 · app 335fb6b7c6",
    );
  });
});
