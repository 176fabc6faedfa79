/**
 * Types of the content level of audit verification: the tables and artifact files recomputed and compared
 * against the facts and hashes the ledger's events recorded. Shared with server/audit/verify.ts (levels.content)
 * and the bundle verifier.
 *
 * Invariants: a ContentProblem always names the entity (type + id) and the field that disagrees; `recorded` is
 * what the ledger says (null when the ledger has no event for a row), `found` what the table/file holds now
 * (null when the row or file is missing); `seq` is the seq of the covering event when there is one.
 */

export type ContentProblem = {
  entityType: string;
  entityId: string;
  field: string;
  recorded: string | null;
  found: string | null;
  seq: number | null;
  message: string;
};

export type ContentLevel = {
  ok: boolean;
  /** Number of facts (hashes/values) compared. */
  checked: number;
  problems: ContentProblem[];
  /** Plain-words statements of what the ledger does not cover (older events without a hash, etc.). */
  notCovered: string[];
  /** Set when the content level was not run (e.g. no database at hand), saying why. */
  skipped?: string;
};
