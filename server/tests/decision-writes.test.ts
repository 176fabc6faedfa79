/**
 * Every decision row is built one way: server/decisions/service.ts insertDecision writes it and returns the reference
 * (id, path, kind, sha256 of the whole row) that the ledger event of the same transaction carries. A service that
 * inserts into the decisions table itself computes that reference its own way (or forgets it), so the content
 * verifier's binding of rows to events would rest on two implementations. This scans the server's source (tests and
 * their fixtures excepted) for an insert into the decisions table anywhere else.
 */
import { describe, expect, it } from "vitest";
import fs from "node:fs";
import path from "node:path";

const SERVER = path.resolve(__dirname, "..");
const THE_ONE_WRITER = path.join(SERVER, "decisions", "service.ts");
/** `.insert(decisions)`, `.insert(t.decisions)`, `.insert(tables.decisions)`, `.insert(schema.decisions)`, across line breaks. */
const INSERT_INTO_DECISIONS = /\.insert\(\s*(?:[A-Za-z_$][\w$]*\.)?decisions\s*\)/g;

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== "tests" && e.name !== "node_modules") out.push(...sourceFiles(p));
    } else if (/\.(ts|tsx)$/.test(e.name) && !/\.test\.tsx?$/.test(e.name)) out.push(p);
  }
  return out;
}

describe("decision rows", () => {
  it("are inserted only by insertDecision (server/decisions/service.ts)", () => {
    const files = sourceFiles(SERVER);
    expect(files).toContain(THE_ONE_WRITER);
    const elsewhere = files
      .filter((f) => f !== THE_ONE_WRITER)
      .flatMap((f) => {
        const text = fs.readFileSync(f, "utf8");
        return [...text.matchAll(INSERT_INTO_DECISIONS)].map(
          (m) => `${path.relative(SERVER, f)}:${text.slice(0, m.index).split("\n").length}`,
        );
      });
    expect(elsewhere).toEqual([]);
    // The scan finds the one writer's insert, so a change of its spelling cannot make this test pass vacuously.
    expect(fs.readFileSync(THE_ONE_WRITER, "utf8").match(INSERT_INTO_DECISIONS)).toHaveLength(1);
  });
});
