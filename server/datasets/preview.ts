/**
 * The dataset page's Rows preview: the first N rows of a dataset's raw file, split and typed by the rules the upload
 * used (papaparse with PAPA_OPTIONS, the missing-value tokens and number syntax of trainer/data), with the column
 * names and types of the stored schema.
 *
 * Invariants:
 * - Reads at most PREVIEW_PREFIX_BYTES from the start of the file, through the artifact store the dataset lives in
 *   (a file under the data directory, or chunks in PostgreSQL), never the whole file: a 100 MB upload previews as
 *   fast as Iris. When the rows asked for do not fit in that prefix, the answer says so (`cutShort`).
 * - The last row of a cut prefix may be unfinished, so it is never shown: only rows followed by another row (or by
 *   the end of the file) are.
 * - A read: no audit event, no write, and built-in datasets are previewed from the same store as uploads.
 */
import Papa from "papaparse";
import { eq } from "drizzle-orm";
import { z } from "zod";
import type { Db } from "@/db/client";
import { asStore, reader, type Store } from "@/db/store";
import { awaitedArtifacts, type AnyArtifactStore } from "@/server/artifacts/async-store";
import { notFound } from "@/server/errors";
import { formatSize, headerNames, NOT_UTF8_MESSAGE, PAPA_OPTIONS, quoteError, raggedRowError } from "@/trainer/data/csv";
import { isMissingToken, parseNumber } from "@/trainer/data/values";
import type { DatasetSchema } from "@/trainer/types";

/** How much of the file a preview reads: 50 rows of a few thousand characters each fit. */
export const PREVIEW_PREFIX_BYTES = 256 * 1024;
export const PREVIEW_MAX_ROWS = 50;

export const previewInputSchema = z.object({
  id: z.number().int(),
  limit: z
    .number()
    .int()
    .min(1, "ask for at least 1 row")
    .max(PREVIEW_MAX_ROWS, `a preview shows at most ${PREVIEW_MAX_ROWS} rows`)
    .default(20),
});

export type PreviewCell = string | number | null;

export type RowsPreview = {
  columns: { name: string; type: "number" | "string"; label: boolean }[];
  kind: DatasetSchema["kind"];
  imageShape: [number, number, number] | null;
  textColumn: string | null;
  rows: PreviewCell[][];
  /** The dataset's data rows (recorded when it was registered). */
  totalRows: number;
  /** Bytes read for this preview, and the file's size. */
  bytesRead: number;
  byteSize: number;
  /** Why fewer rows than asked are shown although the dataset has more; null otherwise. */
  cutShort: string | null;
};

/**
 * The first `limit` complete data rows of a CSV prefix. `complete`: the prefix is the whole file. Throws when the
 * bytes break the upload's rules (they were checked at upload, so only a changed file gets there).
 */
export function previewCsvRows(
  prefix: Uint8Array,
  complete: boolean,
  schema: DatasetSchema,
  limit: number,
): { rows: PreviewCell[][]; rowTooLong: boolean } {
  let text: string;
  try {
    // stream: a cut prefix may end inside a multi-byte character, which is held back instead of refused.
    text = new TextDecoder("utf-8", { fatal: true }).decode(prefix, { stream: !complete });
  } catch {
    throw new Error(NOT_UTF8_MESSAGE);
  }
  // One row beyond those shown: it proves the last shown row is finished when the prefix is cut.
  const parsed = Papa.parse<string[]>(text, { ...PAPA_OPTIONS, preview: limit + 2 });
  // A cut prefix can end inside a quoted cell; that row is dropped below, so its quote error is not the file's.
  const badQuote = complete ? parsed.errors.find((e) => e.type === "Quotes") : undefined;
  if (badQuote) throw quoteError(typeof badQuote.row === "number" ? badQuote.row : 0);
  const [header, ...dataRows] = parsed.data;
  const names = schema.columns.map((c) => c.name);
  const headerFinished = header !== undefined && (complete || dataRows.length > 0);
  if (headerFinished) {
    const found = headerNames(header);
    if (found.join("\u0000") !== names.join("\u0000"))
      throw new Error(`the file's header (${found.join(", ")}) does not match the recorded schema (${names.join(", ")})`);
  }
  const finished = complete || dataRows.length > limit ? dataRows : dataRows.slice(0, -1);
  const shown = finished.slice(0, limit);
  const rows = shown.map((cells, r) => {
    if (cells.length !== names.length) throw raggedRowError(r + 1, cells.length, names.length);
    return cells.map((c, i): PreviewCell => {
      if (isMissingToken(c)) return null;
      return schema.columns[i]!.type === "number" ? parseNumber(c) : c.trim();
    });
  });
  return { rows, rowTooLong: !complete && shown.length < limit };
}

/** The Rows preview of dataset `id` (not found: a not_found error naming it). */
export async function previewDatasetRows(
  deps: { db: Store | Db; artifacts: AnyArtifactStore },
  input: { id: number; limit: number },
): Promise<RowsPreview> {
  const store = asStore(deps.db);
  const { datasets } = store.tables;
  const [d] = await reader(store).select().from(datasets).where(eq(datasets.id, input.id)).limit(1);
  if (!d) notFound(`dataset ${input.id}`);
  const schema = JSON.parse(d.schemaJson) as DatasetSchema;
  let prefix;
  try {
    prefix = await awaitedArtifacts(deps.artifacts).readPrefix(d.sha256, PREVIEW_PREFIX_BYTES);
  } catch (e) {
    throw new Error(`the raw file of dataset ${d.id} (sha256 ${d.sha256.slice(0, 12)}…) could not be read from the artifact store`, {
      cause: e,
    });
  }
  const complete = prefix.bytes.byteLength >= prefix.size;
  const { rows, rowTooLong } = previewCsvRows(prefix.bytes, complete, schema, input.limit);
  const cutShort =
    rowTooLong && rows.length < d.rowCount
      ? `row ${rows.length + 1} does not end within the first ${formatSize(PREVIEW_PREFIX_BYTES)} of the file, which is all a preview reads`
      : null;
  return {
    columns: schema.columns.map((c) => ({ name: c.name, type: c.type, label: c.name === schema.labelColumn })),
    kind: schema.kind,
    imageShape: schema.imageShape ?? null,
    textColumn: schema.textColumn ?? null,
    rows,
    totalRows: d.rowCount,
    bytesRead: prefix.bytes.byteLength,
    byteSize: prefix.size,
    cutShort,
  };
}
