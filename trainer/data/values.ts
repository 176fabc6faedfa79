/**
 * Cell-level rules shared by the CSV parser and the validators: which raw strings mean "missing",
 * and which parse as numbers. Kept in one place so parsing and validation can never disagree.
 */

/** Raw cell values (after trimming) that mean "no value". Compared case-sensitively except NA/NaN/null variants below. */
export const MISSING_TOKENS: ReadonlySet<string> = new Set(["", "NA", "N/A", "na", "NaN", "nan", "null", "NULL", "?"]);

// Plain decimal or scientific notation only: no hex ("0x1f"), no "Infinity", no thousands separators,
// so that a value like "1,5" or "0x10" is reported rather than silently reinterpreted.
const NUMBER_PATTERN = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

export function isMissingToken(raw: string): boolean {
  return MISSING_TOKENS.has(raw.trim());
}

/** The number a raw cell holds, or null when it is not a plain finite number. */
export function parseNumber(raw: string): number | null {
  const s = raw.trim();
  if (!NUMBER_PATTERN.test(s)) return null;
  const n = Number(s);
  return Number.isFinite(n) ? n : null;
}

/** Quote a cell value for an error message, shortened so one bad cell cannot flood the UI. */
export function quoteValue(value: unknown): string {
  const s = String(value);
  return `'${s.length > 40 ? `${s.slice(0, 37)}...` : s}'`;
}
