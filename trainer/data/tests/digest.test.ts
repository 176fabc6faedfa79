/** tableSha256 must equal sha256Canonical({ columns, rows }) exactly: it is the dataset version digest. */
import { describe, expect, it } from "vitest";
import { sha256Canonical } from "@/contracts/canonical";
import type { Table } from "@/trainer/types";
import { loadBuiltin } from "../builtin";
import { parseCsv } from "../csv";
import { tableSha256 } from "../digest";

describe("tableSha256", () => {
  it("equals sha256Canonical on every built-in dataset", () => {
    for (const name of ["iris", "digits", "sentences"]) {
      const table = parseCsv(loadBuiltin(name).bytes);
      expect(tableSha256(table)).toBe(sha256Canonical({ columns: table.columns, rows: table.rows }));
    }
  });

  it("equals sha256Canonical on awkward values: nulls, quotes, escapes, unicode, -0, tiny and huge numbers", () => {
    const table: Table = {
      columns: [
        { name: "n", type: "number" },
        { name: "s", type: "string" },
      ],
      rows: [
        [-0, 'say "hi"\\n'],
        [1e21, "tab\there\u0001"],
        [5e-7, "café 🚀 \u2028"],
        [null, null],
        [0.1 + 0.2, "</script>"],
      ],
    };
    expect(tableSha256(table)).toBe(sha256Canonical({ columns: table.columns, rows: table.rows }));
  });

  it("refuses values canonical JSON cannot hold", () => {
    const bad: Table = { columns: [{ name: "n", type: "number" }], rows: [[Number.NaN]] };
    expect(() => tableSha256(bad)).toThrow("NaN or Infinity");
    const lone: Table = { columns: [{ name: "s", type: "string" }], rows: [["\uD800x"]] };
    expect(() => tableSha256(lone)).toThrow("lone surrogate");
  });
});
