/**
 * scripts/build-if-stale.ts decides from file contents whether `npm start` must run `next build`: these tests build
 * fake trees and fake .next directories in temp dirs (no real build) and check each reason to build or to reuse.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { currentInputs, decide, isBuildInput, writeStamp } from "../build-if-stale";

let root: string;

function put(rel: string, content: string) {
  const file = path.join(root, rel);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
}

/** What a successful `next build` leaves behind, as far as the script looks: .next/BUILD_ID. */
function fakeBuild(buildId = "build-1") {
  put(".next/BUILD_ID", buildId);
}

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "build-if-stale-"));
  put("app/page.tsx", "export default function Page() { return null; }\n");
  put("server/trpc/router.ts", "export const x = 1;\n");
  put("package.json", "{}\n");
  put("package-lock.json", "{}\n");
  put("next.config.js", "module.exports = {};\n");
});

afterEach(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

describe("build-if-stale", () => {
  it("builds when there is no build, and reuses a build whose stamp matches the sources", () => {
    expect(decide(root, currentInputs(root, {}))).toMatchObject({ build: true, reason: "no production build in .next" });
    fakeBuild();
    writeStamp(root, currentInputs(root, {}));
    const d = decide(root, currentInputs(root, {}));
    expect(d.build).toBe(false);
    expect(d.reason).toMatch(/^reusing the build in \.next \(5 source files unchanged/);
  });

  it("builds when a source file changes, appears or disappears, and names it", () => {
    fakeBuild();
    writeStamp(root, currentInputs(root, {}));
    put("app/page.tsx", "export default function Page() { return 1; }\n");
    expect(decide(root, currentInputs(root, {}))).toEqual({
      build: true,
      reason: "1 source file changed since the last build (app/page.tsx)",
    });
    writeStamp(root, currentInputs(root, {}));
    put("contracts/new.ts", "export {};\n");
    fs.rmSync(path.join(root, "server/trpc/router.ts"));
    expect(decide(root, currentInputs(root, {})).reason).toBe(
      "2 source files changed since the last build (contracts/new.ts, server/trpc/router.ts)",
    );
  });

  it("builds when the lockfile, next.config.js or a root .env file changes", () => {
    for (const [rel, content] of [
      ["package-lock.json", '{"a":1}\n'],
      ["next.config.js", "module.exports = { a: 1 };\n"],
      [".env.production", "X=1\n"],
    ] as const) {
      fakeBuild();
      writeStamp(root, currentInputs(root, {}));
      put(rel, content);
      expect(decide(root, currentInputs(root, {})).reason, rel).toContain(rel);
    }
  });

  it("ignores tests, e2e, bench, docs, data, node_modules, build output and tool state", () => {
    fakeBuild();
    writeStamp(root, currentInputs(root, {}));
    for (const rel of [
      "server/trpc/tests/router.test.ts",
      "server/tests/helper.ts",
      "app/x.test.tsx",
      "e2e/a.spec.ts",
      "bench/main.ts",
      "README.md",
      "server/NOTES.md",
      "data/runledger.db",
      "node_modules/x/index.js",
      ".next/cache/x",
      ".git/HEAD",
      "next-env.d.ts",
      "tsconfig.tsbuildinfo",
      "test-results/x",
      "app/.DS_Store",
      ".prettierrc.json",
      "vitest.config.mts",
    ]) {
      put(rel, "changed\n");
    }
    expect(decide(root, currentInputs(root, {})).build).toBe(false);
    expect(isBuildInput(".env", false)).toBe(true);
    expect(isBuildInput("app/.env", false)).toBe(false);
  });

  it("builds when .next holds another build than the stamp describes, or no stamp, or a damaged one", () => {
    fakeBuild("build-1");
    expect(decide(root, currentInputs(root, {})).reason).toMatch(/has no source stamp/);
    writeStamp(root, currentInputs(root, {}));
    fakeBuild("build-2"); // a bare `next build` replaced the output
    expect(decide(root, currentInputs(root, {})).reason).toMatch(/not the one the stamp describes/);
    put(".next/runledger-build-stamp.json", "{not json");
    expect(decide(root, currentInputs(root, {})).build).toBe(true);
  });

  it("builds when NEXT_PUBLIC_* variables change (they are inlined into the client bundle), not for other variables", () => {
    fakeBuild();
    writeStamp(root, currentInputs(root, { NEXT_PUBLIC_A: "1", OTHER: "x" }));
    expect(decide(root, currentInputs(root, { NEXT_PUBLIC_A: "1", OTHER: "y" })).build).toBe(false);
    expect(decide(root, currentInputs(root, { NEXT_PUBLIC_A: "2" })).reason).toMatch(/NEXT_PUBLIC_/);
  });
});
