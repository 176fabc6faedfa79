/** parseCsv: real-world CSV quirks and every error case, with the exact message a user sees. */
import { describe, expect, it } from "vitest";
import { parseCsv } from "../csv";
import { bytesOf, datasetErrorOf } from "./helpers";

describe("parseCsv", () => {
  it("parses a header and rows, infers column types and turns missing tokens into null", () => {
    const table = parseCsv(bytesOf("a,b,name\n1,2.5,x\n-3,NA,y\n1e3,?,\n.5,null,z\n"));
    expect(table.columns).toEqual([
      { name: "a", type: "number" },
      { name: "b", type: "number" },
      { name: "name", type: "string" },
    ]);
    expect(table.rows).toEqual([
      [1, 2.5, "x"],
      [-3, null, "y"],
      [1000, null, null],
      [0.5, null, "z"],
    ]);
  });

  it("strips a UTF-8 BOM, handles quoted fields with commas, quotes and newlines, and CRLF line ends", () => {
    const text = '\uFEFFtext,label\r\n"Hello, world",a\r\n"She said ""hi""",b\r\n"two\nlines",a\r\n';
    const table = parseCsv(bytesOf(text));
    expect(table.columns.map((c) => c.name)).toEqual(["text", "label"]);
    expect(table.rows).toEqual([
      ["Hello, world", "a"],
      ['She said "hi"', "b"],
      ["two\nlines", "a"],
    ]);
  });

  it("keeps a column as text when one value is not a plain number (no hex, no decimal commas)", () => {
    const table = parseCsv(bytesOf('x,y,z\n1,0x10,"1,5"\n2,3,4\n'));
    expect(table.columns.map((c) => c.type)).toEqual(["number", "string", "string"]);
    expect(table.rows[0]).toEqual([1, "0x10", "1,5"]);
  });

  it("trims spaces around cells and header names", () => {
    const table = parseCsv(bytesOf(" a , b \n 1 , x \n"));
    expect(table.columns).toEqual([
      { name: "a", type: "number" },
      { name: "b", type: "string" },
    ]);
    expect(table.rows).toEqual([[1, "x"]]);
  });

  it("rejects an empty file", () => {
    for (const text of ["", "  \n\n "]) {
      const e = datasetErrorOf(() => parseCsv(bytesOf(text)));
      expect(e.code).toBe("EMPTY_FILE");
      expect(e.message).toBe("The file is empty");
    }
  });

  it("rejects a header with no data rows", () => {
    const e = datasetErrorOf(() => parseCsv(bytesOf("a,b,label\n")));
    expect(e.code).toBe("NO_DATA_ROWS");
    expect(e.message).toBe("The file has a header row but no data rows");
  });

  it("rejects a file over the size limit and says the limit (default 20 MiB)", () => {
    const big = new Uint8Array(20 * 1024 * 1024 + 1);
    const e = datasetErrorOf(() => parseCsv(big));
    expect(e.code).toBe("TOO_LARGE");
    expect(e.message).toBe("The file is 20.0 MiB (20971521 bytes); the limit is 20 MiB");
    const small = datasetErrorOf(() => parseCsv(bytesOf("a,b\n1,2\n"), { maxBytes: 4 }));
    expect(small.message).toBe("The file is 8 bytes; the limit is 4 bytes");
    expect(() => parseCsv(bytesOf("a,b\n1,2\n"), { maxBytes: 8 })).not.toThrow();
  });

  it("detects a semicolon-, tab- or pipe-separated file", () => {
    const cases: [string, string][] = [
      ["a;b;label\n1,5;2;x\n", "semicolon"],
      ["a\tb\tlabel\n1\t2\tx\n", "tab"],
      ["a|b|label\n1|2|x\n", "pipe"],
    ];
    for (const [text, name] of cases) {
      const e = datasetErrorOf(() => parseCsv(bytesOf(text)));
      expect(e.code).toBe("WRONG_DELIMITER");
      expect(e.message).toBe(`The file looks ${name}-separated; save it as comma-separated (CSV)`);
    }
  });

  it("names a ragged row, counting data rows from 1 after the header", () => {
    const rows = ["1,2,3,4,x", "1,2,3,4,x", "1,2,3,4,x", "1,2,3,4,x", "1,2,3,4,x", "1,2,3,4,x", "1,2,x"];
    const e = datasetErrorOf(() => parseCsv(bytesOf(["a,b,c,d,label", ...rows].join("\n"))));
    expect(e.code).toBe("RAGGED_ROW");
    expect(e.message).toBe("row 7 has 3 fields, the header has 5");
    expect(e.row).toBe(7);
    const tooMany = datasetErrorOf(() => parseCsv(bytesOf("a,label\n1,x\n1,x,extra\n")));
    expect(tooMany.message).toBe("row 2 has 3 fields, the header has 2");
  });

  it("rejects duplicate and empty header names", () => {
    const dup = datasetErrorOf(() => parseCsv(bytesOf("a,b,a\n1,2,3\n")));
    expect(dup.code).toBe("DUPLICATE_HEADER");
    expect(dup.message).toBe("column name 'a' appears twice in the header (columns 1 and 3)");
    const empty = datasetErrorOf(() => parseCsv(bytesOf("a,,c\n1,2,3\n")));
    expect(empty.code).toBe("EMPTY_HEADER");
    expect(empty.message).toBe("column 2 has no name in the header row");
  });

  it("rejects an unmatched quote, naming the row", () => {
    const e = datasetErrorOf(() => parseCsv(bytesOf('a,label\n1,x\n2,"y\n3,z\n')));
    expect(e.code).toBe("BAD_QUOTES");
    expect(e.message).toBe('row 2 has an unmatched quote (")');
  });

  it("rejects bytes that are not UTF-8", () => {
    const latin1 = new Uint8Array([0x61, 0x2c, 0x62, 0x0a, 0xe9, 0x2c, 0x31, 0x0a]);
    const e = datasetErrorOf(() => parseCsv(latin1));
    expect(e.code).toBe("NOT_UTF8");
    expect(e.message).toBe("The file is not UTF-8 text; save it as CSV UTF-8");
  });
});
