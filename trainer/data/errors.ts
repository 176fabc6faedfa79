/**
 * DatasetError: the one error type the data pipeline throws for problems in the user's data or recipe.
 *
 * Invariants: `code` is a stable machine-readable tag (tests and the UI branch on it); `message` is a
 * human sentence that names the row and/or column at fault, so it can be shown as-is. Row numbers in
 * messages count data rows from 1, after the header (row 1 is the first line under the header).
 */

export type DatasetErrorCode =
  | "EMPTY_FILE"
  | "NO_DATA_ROWS"
  | "TOO_LARGE"
  | "NOT_UTF8"
  | "WRONG_DELIMITER"
  | "RAGGED_ROW"
  | "BAD_QUOTES"
  | "EMPTY_HEADER"
  | "DUPLICATE_HEADER"
  | "NO_LABEL_COLUMN"
  | "UNKNOWN_COLUMN"
  | "NOT_A_NUMBER"
  | "EMPTY_COLUMN"
  | "TOO_FEW_CLASSES"
  | "TOO_MANY_CLASSES"
  | "BAD_IMAGE_SHAPE"
  | "BAD_TEXT_COLUMN"
  | "MISSING_VALUE"
  | "BAD_CLEANING_STEP"
  | "NO_ROWS_LEFT"
  | "TOO_FEW_ROWS"
  | "BAD_SPLIT"
  | "HASH_MISMATCH"
  | "UNKNOWN_BUILTIN"
  | "BAD_NORMALIZATION";

export class DatasetError extends Error {
  readonly code: DatasetErrorCode;
  /** Optional pointers at the fault, for UIs that want to highlight a cell. */
  readonly row?: number;
  readonly column?: string;

  constructor(code: DatasetErrorCode, message: string, where: { row?: number; column?: string } = {}) {
    super(message);
    this.name = "DatasetError";
    this.code = code;
    if (where.row !== undefined) this.row = where.row;
    if (where.column !== undefined) this.column = where.column;
  }
}

export function isDatasetError(e: unknown): e is DatasetError {
  return e instanceof DatasetError;
}
