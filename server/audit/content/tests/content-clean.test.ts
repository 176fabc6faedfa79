/** Content verification of a clean, real app database: everything the ledger recorded matches the tables and files. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { nativeOff } from "../../tests/native-test-db";
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

  it.skipIf(nativeOff)("reads no decision row into JavaScript when SQLite proves the decisions clean", () => {
    // check-decisions-sql.ts proves them inside SQLite; loadTables' "onDemand" reads the table only when a check
    // asks for it, and nothing else may ask (a spread of the tables once did: 0.8 s of a million-event ledger).
    const s = snapshot(fx.app);
    try {
      const statements: string[] = [];
      const prepare = s.db.prepare.bind(s.db);
      s.db.prepare = ((sql: string) => (statements.push(sql), prepare(sql))) as typeof s.db.prepare;
      const r = checkContent(s.db, { artifactsDir: s.artifactsDir, uptoSeq: s.maxSeq });
      expect(r.level.problems).toEqual([]);
      expect(
        statements.some((sql) => /\bFROM decisions\b/.test(sql)),
        "the decisions were judged in SQLite",
      ).toBe(true);
      expect(statements.filter((sql) => /^SELECT [^()]* FROM decisions$/.test(sql))).toEqual([]);
    } finally {
      s.close();
    }
  });
});
