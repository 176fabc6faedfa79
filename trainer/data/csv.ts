/**
 * parseCsv: raw CSV bytes → Table (header row required, comma-separated, UTF-8, optional BOM).
 *
 * Invariants:
 * - Every row of the result has exactly one value per header column (ragged rows are an error, never padded).
 * - Missing-value tokens ("", NA, NaN, null, ?) become null; nothing else does.
 * - A column is "number" when every non-missing value is a plain finite number, and then all its values
 *   are numbers; otherwise it is "string" and its values are the trimmed strings.
 * - Errors are DatasetErrors whose message names the row (counted from 1 after the header) or column.
 * - The header checks, row messages and Papa options are exported for the streaming scan (csv-scan.ts), which
 *   must accept and refuse files exactly as this whole-file parse does.
 */
import Papa from "papaparse";
import type { ColumnType, Table } from "@/trainer/types";
import { DatasetError } from "./errors";
import { isMissingToken, parseNumber } from "./values";

export const DEFAULT_MAX_CSV_BYTES = 20 * 1024 * 1024;

export type ParseCsvOptions = { maxBytes?: number };

const OTHER_DELIMITERS: { char: string; name: string }[] = [
  { char: ";", name: "semicolon" },
  { char: "\t", name: "tab" },
  { char: "|", name: "pipe" },
];

export function formatSize(bytes: number): string {
  const units: [number, string][] = [
    [1024 * 1024, "MiB"],
    [1024, "KiB"],
  ];
  for (const [size, unit] of units) {
    if (bytes >= size) {
      const value = bytes / size;
      return `${Number.isInteger(value) ? value : value.toFixed(1)} ${unit}`;
    }
  }
  return `${bytes} bytes`;
}

function decodeUtf8(bytes: Uint8Array): string {
  try {
    // fatal: reject invalid UTF-8 instead of inserting U+FFFD; the default ignoreBOM=false strips a BOM.
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new DatasetError("NOT_UTF8", NOT_UTF8_MESSAGE);
  }
}

/** A one-field header line that splits cleanly on another delimiter means the file uses that delimiter. */
export function detectForeignDelimiter(headerLine: string): string | null {
  for (const { char, name } of OTHER_DELIMITERS) {
    if (headerLine.split(char).length > 1) return name;
  }
  return null;
}

/** The column names of a header row (trimmed), or the DatasetError that says what is wrong with it. */
export function headerNames(headerCells: string[]): string[] {
  if (headerCells.length === 1) {
    const foreign = detectForeignDelimiter(headerCells[0] ?? "");
    if (foreign) throw new DatasetError("WRONG_DELIMITER", `The file looks ${foreign}-separated; save it as comma-separated (CSV)`);
  }
  const names = headerCells.map((h) => h.trim());
  const seen = new Map<string, number>();
  names.forEach((name, i) => {
    if (name === "") throw new DatasetError("EMPTY_HEADER", `column ${i + 1} has no name in the header row`);
    const first = seen.get(name);
    if (first !== undefined) {
      throw new DatasetError("DUPLICATE_HEADER", `column name '${name}' appears twice in the header (columns ${first + 1} and ${i + 1})`, {
        column: name,
      });
    }
    seen.set(name, i);
  });
  return names;
}

/** The message for a row whose field count differs from the header's (rows counted from 1 after the header). */
export function raggedRowError(row: number, fields: number, columns: number): DatasetError {
  return new DatasetError("RAGGED_ROW", `row ${row} has ${fields} field${fields === 1 ? "" : "s"}, the header has ${columns}`, { row });
}

/** The message for an unmatched or malformed quote; row 0 is the header. */
export function quoteError(row: number): DatasetError {
  return new DatasetError("BAD_QUOTES", row === 0 ? 'The header row has an unmatched quote (")' : `row ${row} has an unmatched quote (")`, {
    row,
  });
}

/** The same options for the whole-file parse here and the streaming scan (csv-scan.ts), so both split rows alike. */
export const PAPA_OPTIONS = { delimiter: ",", skipEmptyLines: true, header: false } as const;

export const NOT_UTF8_MESSAGE = "The file is not UTF-8 text; save it as CSV UTF-8";

export function parseCsv(bytes: Uint8Array, opts: ParseCsvOptions = {}): Table {
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_CSV_BYTES;
  if (bytes.length > maxBytes) {
    const size = formatSize(bytes.length);
    // Exact bytes too, since "20.0 MiB" next to a 20 MiB limit would not show why the file is refused.
    const exact = size.endsWith(" bytes") ? "" : ` (${bytes.length} bytes)`;
    throw new DatasetError("TOO_LARGE", `The file is ${size}${exact}; the limit is ${formatSize(maxBytes)}`);
  }
  const text = decodeUtf8(bytes);
  if (text.trim() === "") throw new DatasetError("EMPTY_FILE", "The file is empty");

  const parsed = Papa.parse<string[]>(text, { ...PAPA_OPTIONS });
  const badQuote = parsed.errors.find((e) => e.type === "Quotes");
  if (badQuote) throw quoteError(typeof badQuote.row === "number" ? badQuote.row : 0);
  const [headerCells, ...dataRows] = parsed.data;
  if (!headerCells) throw new DatasetError("EMPTY_FILE", "The file is empty");

  const names = headerNames(headerCells);

  if (dataRows.length === 0) throw new DatasetError("NO_DATA_ROWS", "The file has a header row but no data rows");

  const raw: (string | null)[][] = dataRows.map((cells, r) => {
    if (cells.length !== names.length) throw raggedRowError(r + 1, cells.length, names.length);
    return cells.map((c) => (isMissingToken(c) ? null : c.trim()));
  });

  const types: ColumnType[] = names.map((_, c) =>
    raw.every((row) => row[c] == null || parseNumber(row[c]!) !== null) ? "number" : "string",
  );
  const rows = raw.map((row) => row.map((v, c) => (v === null ? null : types[c] === "number" ? parseNumber(v) : v)));
  return { columns: names.map((name, c) => ({ name, type: types[c]! })), rows };
}
