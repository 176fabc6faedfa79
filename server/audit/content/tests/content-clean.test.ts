/** Content verification of a clean, real app database: everything the ledger recorded matches the tables and files. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkContent } from "../verify-content";
import { buildContentFixture, snapshot, type ContentFixture } from "./content-fixture";

let fx: ContentFixture;
beforeAll(async () => {
  fx = await buildContentFixture();
}, 180_000);
afterAll(() => fx?.app.close());

describe("content verification of a clean database", () => {
  it("finds every row and file as the ledger recorded it", () => {
    const s = snapshot(fx.app);
    try {
      const r = checkContent(s.db, { artifactsDir: s.artifactsDir, uptoSeq: s.maxSeq });
      console.log(JSON.stringify({ ...r.level, coverage: r.coverage.size, files: r.filesHashed, ms: r.durationMs }, null, 1));
      expect(r.level.problems).toEqual([]);
      expect(r.level.ok).toBe(true);
    } finally {
      s.close();
    }
  });
});
