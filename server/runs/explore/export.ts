/**
 * Export of the runs table's current view (filter, sort, chosen columns) as CSV or JSON, generated on the server
 * from the same query as the table (searchRuns: same filter parser, same sort, same column whitelist). Read only.
 *
 * Invariants:
 * - Bounded: at most EXPORT_MAX_ROWS runs (the first ones in the view's sort order). When the view holds more,
 *   the result says so (`truncated`, `total`, shown by the UI) and so does the file: a JSON `note` field; for CSV
 *   (a note line would break CSV readers) the file name reads "runs-first-N-of-M.csv".
 * - Numbers are written unrounded: String(n) is JavaScript's shortest round-trip form, so parsing a cell gives
 *   back the exact stored double.
 * - CSV follows RFC 4180: fields holding a comma, quote, CR or LF are quoted and quotes doubled; lines end in CRLF.
 * - No cell is a spreadsheet formula (CSV injection, OWASP): a text value a user typed (run name, tag, description,
 *   a string param) that starts with = + - @ TAB or CR gets a leading apostrophe, which spreadsheets show as text.
 *   Numbers are stored as numbers and written as such, so a negative metric stays "-0.5"; a text value that is
 *   wholly a plain decimal number ("-1", "+2.5e-3") cannot start a formula and is written unchanged. The JSON
 *   export is never altered.
 * - Column order: the fixed run fields, then the chosen metric columns, then the chosen param columns (the table's
 *   order), each named by its field ("metrics.val_loss", "metrics.val_loss.min", "params.training.learningRate").
 */
import type { StoreOrDb } from "./store";
import { searchRuns, type ParamValue, type RunRow, type SortSpec } from "./runs-search";
import { resolveFieldName } from "./fields";
import { RunsQueryError } from "./errors";

export const EXPORT_MAX_ROWS = 1000;

export type ExportRunsInput = {
  experimentId?: number;
  filter?: string;
  sort?: SortSpec[];
  /** The table's chosen column fields (param and metric columns of the file); none: only the fixed run fields. */
  columns?: string[];
  format: "csv" | "json";
};

export type ExportedRuns = {
  format: "csv" | "json";
  fileName: string;
  mimeType: string;
  content: string;
  rows: number;
  total: number;
  truncated: boolean;
};

type Column = { header: string; value: (r: RunRow) => ParamValue | undefined };

const FIXED: Column[] = [
  { header: "id", value: (r) => r.id },
  { header: "name", value: (r) => r.name },
  { header: "status", value: (r) => r.status },
  { header: "experiment", value: (r) => r.experimentName },
  { header: "author", value: (r) => r.author },
  { header: "created_at", value: (r) => r.createdAt },
  { header: "finished_at", value: (r) => r.finishedAt },
  { header: "duration_ms", value: (r) => r.durationMs },
  { header: "tags", value: (r) => r.tags.join(" ") },
];

/** The chosen fields as export columns (metrics first, then params), resolved through the filter's whitelist. */
function chosenColumns(fields: string[]): Column[] {
  const metrics: Column[] = [];
  const params: Column[] = [];
  const seen = new Set<string>();
  for (const text of fields) {
    const r = resolveFieldName(text);
    if (!r.ok) throw new RunsQueryError(`column: ${r.message}${r.hint ? `; ${r.hint}` : ""}`);
    const f = r.field;
    if (f.kind === "metric") {
      const key = f.stat === "last" ? f.key : `${f.key}.${f.stat}`;
      const header = `metrics.${key}`;
      if (!seen.has(header)) metrics.push({ header, value: (row) => row.metrics[key] });
      seen.add(header);
    } else if (f.kind === "param") {
      const header = `params.${f.path}`;
      if (!seen.has(header)) params.push({ header, value: (row) => row.params[f.path] });
      seen.add(header);
    }
  }
  return [...metrics, ...params];
}

const FORMULA_START = /^[=+\-@\t\r]/;
const PLAIN_NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/** One CSV field: numbers unrounded, missing as empty, formula-like text neutralised, quoted when RFC 4180 requires it. */
export function csvField(v: ParamValue | undefined): string {
  if (v === undefined || v === null) return "";
  let text = String(v);
  if (typeof v === "string" && FORMULA_START.test(text) && !PLAIN_NUMBER.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export async function exportRuns(db: StoreOrDb, input: ExportRunsInput): Promise<ExportedRuns> {
  const columns = input.columns ?? [];
  const chosen = chosenColumns(columns);
  const { total, rows } = await searchRuns(db, {
    experimentId: input.experimentId,
    filter: input.filter,
    sort: input.sort,
    // The search must load exactly the chosen params and metrics; [] would load every metric but no param.
    columns,
    offset: 0,
    limit: EXPORT_MAX_ROWS,
  });
  const all = [...FIXED, ...chosen];
  const truncated = total > rows.length;
  const stem = `runs${truncated ? `-first-${rows.length}-of-${total}` : ""}`;
  if (input.format === "csv") {
    const lines = [all.map((c) => csvField(c.header)).join(",")];
    for (const r of rows) lines.push(all.map((c) => csvField(c.value(r))).join(","));
    return {
      format: "csv",
      fileName: `${stem}.csv`,
      mimeType: "text/csv",
      content: lines.join("\r\n") + "\r\n",
      rows: rows.length,
      total,
      truncated,
    };
  }
  const body = {
    view: { experimentId: input.experimentId ?? null, filter: input.filter ?? "", sort: input.sort ?? [], columns },
    total,
    exported: rows.length,
    truncated,
    note: truncated ? `Only the first ${rows.length} of ${total} runs (export cap ${EXPORT_MAX_ROWS}).` : null,
    columns: all.map((c) => c.header),
    runs: rows.map((r) => Object.fromEntries(all.map((c) => [c.header, c.value(r) ?? null]))),
  };
  return {
    format: "json",
    fileName: `${stem}.json`,
    mimeType: "application/json",
    content: JSON.stringify(body, null, 2) + "\n",
    rows: rows.length,
    total,
    truncated,
  };
}
