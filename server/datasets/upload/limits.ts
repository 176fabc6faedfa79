/**
 * Upload limits for CSV datasets, read from the environment (documented in the README, "Uploads"):
 *   RUNLEDGER_UPLOAD_MAX_BYTES       default 128 MiB (a 100 MB CSV fits)   the request body and the file
 *   RUNLEDGER_UPLOAD_MAX_ROWS        default 5,000,000                      data rows after the header
 *   RUNLEDGER_UPLOAD_MAX_COLUMNS     default 10,000                         columns in the header
 *   RUNLEDGER_UPLOAD_MAX_CELL_CHARS  default 100,000                        characters in one cell
 * Invariant: a setting that is not a whole number ≥ 1 makes every upload fail with a message naming it (never a
 * silent fallback to the default), so an operator's typo cannot lift or hide a limit.
 */
import type { CsvCapSettings, CsvCaps } from "@/trainer/data/csv-scan";

export const UPLOAD_LIMIT_SETTINGS = {
  maxBytes: "RUNLEDGER_UPLOAD_MAX_BYTES",
  maxRows: "RUNLEDGER_UPLOAD_MAX_ROWS",
  maxColumns: "RUNLEDGER_UPLOAD_MAX_COLUMNS",
  maxCellChars: "RUNLEDGER_UPLOAD_MAX_CELL_CHARS",
} as const satisfies CsvCapSettings;

export const DEFAULT_UPLOAD_LIMITS: CsvCaps = {
  maxBytes: 128 * 1024 * 1024,
  maxRows: 5_000_000,
  maxColumns: 10_000,
  maxCellChars: 100_000,
};

/** Uploads processed at once; more get 429 with Retry-After (each holds a parse worker and a temp file). */
export const MAX_CONCURRENT_UPLOADS = 2;

export function uploadLimits(env: Record<string, string | undefined> = process.env): CsvCaps {
  const out = { ...DEFAULT_UPLOAD_LIMITS };
  for (const key of Object.keys(UPLOAD_LIMIT_SETTINGS) as (keyof CsvCaps)[]) {
    const name = UPLOAD_LIMIT_SETTINGS[key];
    const raw = env[name];
    if (raw === undefined || raw.trim() === "") continue;
    const value = Number(raw.trim());
    if (!Number.isSafeInteger(value) || value < 1) throw new Error(`${name}=${JSON.stringify(raw)} is not a whole number ≥ 1`);
    out[key] = value;
  }
  return out;
}
