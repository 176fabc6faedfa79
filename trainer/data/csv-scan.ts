/**
 * CsvScanner: the streaming check of an uploaded CSV. Bytes go in chunk by chunk; out come the column names, each
 * column's type and the row count (a CsvProfile), or the DatasetError of the first problem in file order. It never
 * holds the file: memory is bounded by one chunk plus one unfinished row (itself capped).
 *
 * Invariants:
 * - Rows are split by papaparse with the same options as parseCsv (csv.ts), fed through Papa's own chunked stream
 *   parser, so an accepted file gives exactly the columns, types and row count parseCsv gives for the same bytes
 *   (a test checks this on every built-in dataset). The first chunk Papa sees holds at least 1 Mi characters (or
 *   the whole file), the span Papa guesses line endings from in a whole-file parse too.
 * - Caps (bytes, data rows, columns, characters per cell) are checked while reading and refused with a
 *   DatasetError (code TOO_LARGE) naming the limit; an unfinished row longer than `maxRowChars` (an unmatched
 *   quote makes the rest of the file one row) is refused as soon as it exceeds that, so it cannot grow unbounded.
 * - Errors are the ones parseCsv throws (same codes, same sentences). When a file has several problems, this scan
 *   names the first one in file order; parseCsv, which sees the whole file, may name another of them.
 * - A file with nothing but whitespace is EMPTY_FILE, as in parseCsv, even when its first line would be a bad header.
 */
import { EventEmitter } from "node:events";
import { createHash, type Hash } from "node:crypto";
import Papa from "papaparse";
import type { ColumnType } from "@/trainer/types";
import { DatasetError } from "./errors";
import { formatSize, headerNames, NOT_UTF8_MESSAGE, PAPA_OPTIONS, quoteError, raggedRowError } from "./csv";
import { isMissingToken, parseNumber } from "./values";

export type CsvCaps = { maxBytes: number; maxRows: number; maxColumns: number; maxCellChars: number };
/** Optional names of the settings behind each cap, appended to the error so an operator knows what to change. */
export type CsvCapSettings = Partial<Record<keyof CsvCaps, string>>;
export type CsvProfile = { columns: { name: string; type: ColumnType }[]; rowCount: number; bytes: number; sha256: string };
export type CsvScanProgress = { bytes: number; rows: number };

/** Papa guesses the line ending from the first 1 Mi characters it is given; the first chunk holds at least that. */
const FIRST_CHUNK_CHARS = 1024 * 1024;
const MAX_ROW_CHARS_CEILING = 16 * 1024 * 1024;

const count = (n: number) => n.toLocaleString("en-US");

/** The longest unfinished row the scan keeps before refusing the file. */
export function maxRowChars(caps: CsvCaps): number {
  return Math.max(64 * 1024, Math.min(caps.maxColumns * (caps.maxCellChars + 3), MAX_ROW_CHARS_CEILING));
}

export function tooLargeError(bytes: number, maxBytes: number, setting?: string): DatasetError {
  const size = formatSize(bytes);
  const exact = size.endsWith(" bytes") ? "" : ` (${bytes} bytes)`;
  return new DatasetError(
    "TOO_LARGE",
    `The file is ${size}${exact}; the limit is ${formatSize(maxBytes)}${setting ? ` (server setting ${setting})` : ""}`,
  );
}

type PapaChunk = { data: string[][]; errors: { type: string; row?: number }[]; meta: { cursor: number } };

export class CsvScanner {
  private readonly hash: Hash = createHash("sha256");
  private readonly decoder = new TextDecoder("utf-8", { fatal: true });
  private readonly source = Object.assign(new EventEmitter(), { readable: true as const, read() {}, pause() {}, resume() {} });
  private bytes = 0;
  private fedChars = 0;
  private pending = "";
  private started = false;
  private sawContent = false;
  private failure: unknown = null;
  private completed = false;
  /** Rows seen so far, the header included (Papa's rows after empty lines are skipped). */
  private rowsSeen = 0;
  private names: string[] | null = null;
  private deferredHeaderError: DatasetError | null = null;
  private types: ColumnType[] = [];
  private lastProgressBytes = 0;

  constructor(
    private readonly caps: CsvCaps,
    private readonly opts: { settings?: CsvCapSettings; onProgress?: (p: CsvScanProgress) => void; progressEveryBytes?: number } = {},
  ) {
    Papa.parse(
      this.source as unknown as File,
      {
        ...PAPA_OPTIONS,
        chunk: (results: PapaChunk) => this.onChunk(results),
        error: (err: unknown) => {
          this.failure ??= err;
        },
        complete: () => {
          this.completed = true;
        },
      } as Papa.ParseLocalConfig<string[], File>,
    );
  }

  private setting(cap: keyof CsvCaps): string {
    const name = this.opts.settings?.[cap];
    return name ? ` (server setting ${name})` : "";
  }

  /** Feeds the next bytes of the file. Throws the DatasetError of the first problem found. */
  push(chunk: Uint8Array): void {
    this.throwIfFailed();
    this.bytes += chunk.byteLength;
    if (this.bytes > this.caps.maxBytes)
      throw new DatasetError(
        "TOO_LARGE",
        `The file is larger than the limit of ${formatSize(this.caps.maxBytes)}${this.setting("maxBytes")}`,
      );
    this.hash.update(chunk);
    let text: string;
    try {
      text = this.decoder.decode(chunk, { stream: true });
    } catch {
      throw new DatasetError("NOT_UTF8", NOT_UTF8_MESSAGE);
    }
    this.feedText(text, false);
    const every = this.opts.progressEveryBytes ?? 1024 * 1024;
    if (this.opts.onProgress && this.bytes - this.lastProgressBytes >= every) {
      this.lastProgressBytes = this.bytes;
      this.opts.onProgress({ bytes: this.bytes, rows: Math.max(0, this.rowsSeen - 1) });
    }
  }

  /** Ends the file: returns its profile, or throws the DatasetError that says what is wrong. */
  finish(): CsvProfile {
    this.throwIfFailed();
    let tail: string;
    try {
      tail = this.decoder.decode();
    } catch {
      throw new DatasetError("NOT_UTF8", NOT_UTF8_MESSAGE);
    }
    this.feedText(tail, true);
    this.source.emit("end");
    this.throwIfFailed();
    if (!this.completed) throw new Error("csv scan: the parser did not complete");
    if (!this.sawContent) throw new DatasetError("EMPTY_FILE", "The file is empty");
    if (this.deferredHeaderError) throw this.deferredHeaderError;
    if (!this.names) throw new DatasetError("EMPTY_FILE", "The file is empty");
    if (this.rowsSeen <= 1) throw new DatasetError("NO_DATA_ROWS", "The file has a header row but no data rows");
    const names = this.names;
    return {
      columns: names.map((name, c) => ({ name, type: this.types[c]! })),
      rowCount: this.rowsSeen - 1,
      bytes: this.bytes,
      sha256: this.hash.digest("hex"),
    };
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }

  private feedText(text: string, last: boolean): void {
    if (!this.sawContent && /\S/.test(text)) this.sawContent = true;
    if (!this.started) {
      this.pending += text;
      if (this.pending.length < FIRST_CHUNK_CHARS && !last) return;
      this.started = true;
      text = this.pending;
      this.pending = "";
    }
    if (text === "") return;
    this.fedChars += text.length;
    this.source.emit("data", text);
    this.throwIfFailed();
  }

  private onChunk(results: PapaChunk): void {
    if (this.failure) return;
    try {
      this.checkChunk(results);
    } catch (e) {
      this.failure = e;
    }
  }

  private checkChunk(results: PapaChunk): void {
    const rowsBefore = this.rowsSeen;
    const badQuote = results.errors.find((e) => e.type === "Quotes");
    const quoteRow = badQuote ? rowsBefore + (typeof badQuote.row === "number" ? badQuote.row : 0) : Number.POSITIVE_INFINITY;
    for (const cells of results.data) {
      const row = this.rowsSeen; // 0 = header, then data rows from 1
      if (row >= quoteRow) throw quoteError(quoteRow);
      this.rowsSeen++;
      if (row === 0) this.readHeader(cells);
      else this.checkRow(row, cells);
    }
    if (badQuote) throw quoteError(quoteRow);
    const unfinished = this.fedChars - results.meta.cursor;
    if (unfinished > maxRowChars(this.caps)) {
      throw new DatasetError(
        "TOO_LARGE",
        `row ${this.rowsSeen === 0 ? "(the header)" : this.rowsSeen} is longer than ${count(maxRowChars(this.caps))} characters, the most one row may hold; an unmatched quote (") makes the rest of the file one row`,
        { row: this.rowsSeen },
      );
    }
  }

  private readHeader(cells: string[]): void {
    if (cells.length > this.caps.maxColumns) {
      throw new DatasetError(
        "TOO_LARGE",
        `The header has ${count(cells.length)} columns; the limit is ${count(this.caps.maxColumns)}${this.setting("maxColumns")}`,
      );
    }
    try {
      this.names = headerNames(cells);
    } catch (e) {
      // A whitespace-only first line: the file may be whitespace only (EMPTY_FILE), known only at its end.
      if (!(e instanceof DatasetError) || cells.join("").trim() !== "") throw e;
      this.deferredHeaderError = e;
      this.names = cells.map(() => "");
    }
    for (const [c, name] of this.names.entries()) this.checkCellLength(0, name, c);
    this.types = this.names.map(() => "number");
  }

  private checkCellLength(row: number, cell: string, c: number): void {
    if (cell.length <= this.caps.maxCellChars) return;
    const where = row === 0 ? `the header, column ${c + 1}` : `row ${row}, column '${this.names![c]}'`;
    throw new DatasetError(
      "TOO_LARGE",
      `${where}: the value is ${count(cell.length)} characters long; the limit is ${count(this.caps.maxCellChars)}${this.setting("maxCellChars")}`,
      row === 0 ? {} : { row, column: this.names![c] },
    );
  }

  private checkRow(row: number, cells: string[]): void {
    if (this.deferredHeaderError) {
      if (cells.join("").trim() === "") return; // still whitespace; the end decides between EMPTY_FILE and the header error
      throw this.deferredHeaderError;
    }
    const names = this.names!;
    if (row > this.caps.maxRows)
      throw new DatasetError(
        "TOO_LARGE",
        `The file has more than ${count(this.caps.maxRows)} data rows; the limit is ${count(this.caps.maxRows)}${this.setting("maxRows")}`,
        { row },
      );
    if (cells.length !== names.length) throw raggedRowError(row, cells.length, names.length);
    const types = this.types;
    for (let c = 0; c < cells.length; c++) {
      const cell = cells[c]!;
      if (cell.length > this.caps.maxCellChars) this.checkCellLength(row, cell, c);
      if (types[c] === "number" && !isMissingToken(cell) && parseNumber(cell) === null) types[c] = "string";
    }
  }
}

/** Scans a whole in-memory file (tests and small inputs): the same checks as streaming it chunk by chunk. */
export function scanCsvBytes(bytes: Uint8Array, caps: CsvCaps, chunkBytes = 64 * 1024): CsvProfile {
  const scanner = new CsvScanner(caps);
  for (let i = 0; i < bytes.byteLength; i += chunkBytes) scanner.push(bytes.subarray(i, i + chunkBytes));
  return scanner.finish();
}
