/**
 * CsvScanner (streaming) against parseCsv (whole file): the same columns, types and row count for every accepted
 * file whatever the chunk size, the same sentences for every hostile file, and caps that stop a file early.
 */
import { describe, expect, it } from "vitest";
import { parseCsv } from "../csv";
import { CsvScanner, scanCsvBytes, type CsvCaps } from "../csv-scan";
import { BUILTIN_DATASETS, loadBuiltin } from "../builtin";
import { bytesOf, datasetErrorOf } from "./helpers";

const OPEN: CsvCaps = { maxBytes: 1e9, maxRows: 1e8, maxColumns: 1e5, maxCellChars: 1e6 };

function expectSameAsParseCsv(bytes: Uint8Array, chunk: number) {
  const whole = parseCsv(bytes, { maxBytes: Number.POSITIVE_INFINITY });
  const streamed = scanCsvBytes(bytes, OPEN, chunk);
  expect(streamed.columns).toEqual(whole.columns);
  expect(streamed.rowCount).toBe(whole.rows.length);
  expect(streamed.bytes).toBe(bytes.byteLength);
}

describe("CsvScanner", () => {
  it("profiles every built-in dataset exactly as parseCsv does, in small and large chunks", () => {
    for (const name of Object.keys(BUILTIN_DATASETS) as (keyof typeof BUILTIN_DATASETS)[]) {
      const b = loadBuiltin(name);
      for (const chunk of [5, 4096, 1 << 20]) expectSameAsParseCsv(b.bytes, chunk);
      expect(scanCsvBytes(b.bytes, OPEN).sha256).toBe(b.sha256);
    }
  });

  it("agrees with parseCsv past the first mebibyte: quoted newlines, escaped quotes, CRLF, missing values, a late text value", () => {
    let text = "\uFEFFid,text,x,label\r\n";
    for (let i = 0; i < 30_000; i++)
      text += `${i},"line ${i}, with ""quotes""\r\nand a break",${i % 7 === 0 ? "NA" : i * 0.5},${i % 3}\r\n`;
    text += `30000,"last",not-a-number,1\r\n`;
    const bytes = bytesOf(text);
    expect(bytes.byteLength).toBeGreaterThan(1.5 * 1024 * 1024);
    for (const chunk of [997, 65_536]) expectSameAsParseCsv(bytes, chunk);
    expect(scanCsvBytes(bytes, OPEN).columns.map((c) => c.type)).toEqual(["number", "string", "string", "number"]);
  });

  it("gives parseCsv's message for each hostile file, one byte at a time", () => {
    const hostile = [
      "",
      "  \n\n ",
      "a,b,label\n",
      "a;b;label\n1,5;2;x\n",
      "a\tb\tlabel\n1\t2\tx\n",
      'a,label\n1,x\n2,"y\n3,z\n',
      '"a,b\n1,2',
      "a,b,a\n1,2,3\n",
      "a,,c\n1,2,3\n",
      "a,b,label\n1,2,x\n3,y",
      "a,label\n1,x\n1,x,extra\n",
      "  \n1,2",
    ];
    for (const text of hostile) {
      const expected = datasetErrorOf(() => parseCsv(bytesOf(text)));
      const got = datasetErrorOf(() => scanCsvBytes(bytesOf(text), OPEN, 1));
      expect([got.code, got.message], JSON.stringify(text)).toEqual([expected.code, expected.message]);
    }
    const latin1 = new Uint8Array([0x61, 0x2c, 0x62, 0x0a, 0xe9, 0x2c, 0x31, 0x0a]);
    expect(datasetErrorOf(() => scanCsvBytes(latin1, OPEN, 3)).message).toBe("The file is not UTF-8 text; save it as CSV UTF-8");
  });

  it("keeps a multi-byte character split across chunks intact", () => {
    const bytes = bytesOf("name,label\nnaïve café 日本,x\n");
    for (let chunk = 1; chunk <= 4; chunk++) expectSameAsParseCsv(bytes, chunk);
  });

  it("stops at a cap as soon as it is passed, naming the cap and its setting", () => {
    const scanner = new CsvScanner({ ...OPEN, maxBytes: 10 }, { settings: { maxBytes: "RUNLEDGER_UPLOAD_MAX_BYTES" } });
    scanner.push(bytesOf("a,label\n"));
    expect(datasetErrorOf(() => scanner.push(bytesOf("1,x\n"))).message).toBe(
      "The file is larger than the limit of 10 bytes (server setting RUNLEDGER_UPLOAD_MAX_BYTES)",
    );
    const rows = datasetErrorOf(() => scanCsvBytes(bytesOf("a,label\n1,x\n2,y\n"), { ...OPEN, maxRows: 1 }));
    expect([rows.code, rows.message, rows.row]).toEqual(["TOO_LARGE", "The file has more than 1 data rows; the limit is 1", 2]);
    expect(datasetErrorOf(() => scanCsvBytes(bytesOf("a,b,label\n1,2,x\n"), { ...OPEN, maxColumns: 2 })).message).toBe(
      "The header has 3 columns; the limit is 2",
    );
    expect(datasetErrorOf(() => scanCsvBytes(bytesOf(`${"h".repeat(9)},label\n1,x\n`), { ...OPEN, maxCellChars: 8 })).message).toBe(
      "the header, column 1: the value is 9 characters long; the limit is 8",
    );
  });

  it("refuses an unfinished row once it passes the row limit, without reading to the end", () => {
    const caps: CsvCaps = { ...OPEN, maxColumns: 2, maxCellChars: 10 };
    const scanner = new CsvScanner(caps);
    scanner.push(bytesOf('a,label\n1,x\n2,"never closed\n'));
    const filler = bytesOf("3,z\n".repeat(100_000));
    let pushed = 0;
    const e = datasetErrorOf(() => {
      for (;;) {
        scanner.push(filler);
        pushed++;
      }
    });
    expect(e.message).toBe(
      'row 2 is longer than 65,536 characters, the most one row may hold; an unmatched quote (") makes the rest of the file one row',
    );
    expect(pushed).toBeLessThan(10);
  });
});
