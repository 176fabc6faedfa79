/**
 * Dataset schemas: inferring one from a parsed table, and checking a table can serve a task.
 *
 * Invariants:
 * - A schema's label column always exists in the table; feature columns are every other column, in table order
 *   (for text, the text column only).
 * - validateForTask throws a DatasetError naming the first offending column and row, or returns nothing;
 *   it never changes the table.
 */
import type { DatasetSchema, Table } from "@/trainer/types";
import { DatasetError } from "./errors";
import { parseNumber, quoteValue } from "./values";

export type DatasetKind = DatasetSchema["kind"];
export type Task = "classification" | "regression";

/** Column names tried, in order, when no label column is named (matched case-insensitively). */
export const LABEL_COLUMN_CANDIDATES = ["label", "class", "target", "species", "y"] as const;
/** More distinct labels than this almost always means a regression target or an id column. */
export const MAX_CLASSES = 1000;

export type InferSchemaOptions = {
  labelColumn?: string;
  kind?: DatasetKind;
  /** image: [height, width, channels]; default: a square single-channel image if the pixel count is a square. */
  imageShape?: [number, number, number];
  /** text: the column holding the text; default: the only non-label column. */
  textColumn?: string;
};

function listColumns(table: Table): string {
  return table.columns.map((c) => c.name).join(", ");
}

export function columnIndex(table: Table, name: string): number {
  const i = table.columns.findIndex((c) => c.name === name);
  if (i < 0)
    throw new DatasetError("UNKNOWN_COLUMN", `the file has no column named '${name}'; columns are: ${listColumns(table)}`, {
      column: name,
    });
  return i;
}

function resolveLabelColumn(table: Table, requested: string | undefined): string {
  if (requested !== undefined) {
    if (!table.columns.some((c) => c.name === requested)) {
      throw new DatasetError("NO_LABEL_COLUMN", `the file has no column named '${requested}'; columns are: ${listColumns(table)}`, {
        column: requested,
      });
    }
    return requested;
  }
  for (const candidate of LABEL_COLUMN_CANDIDATES) {
    const hit = table.columns.find((c) => c.name.toLowerCase() === candidate);
    if (hit) return hit.name;
  }
  throw new DatasetError(
    "NO_LABEL_COLUMN",
    `no label column: name one (no column is called ${LABEL_COLUMN_CANDIDATES.join(", ")}); columns are: ${listColumns(table)}`,
  );
}

/** Non-label column names in table order. */
export function featureColumnNames(table: Pick<Table, "columns">, schema: Pick<DatasetSchema, "labelColumn">): string[] {
  return table.columns.filter((c) => c.name !== schema.labelColumn).map((c) => c.name);
}

export function inferSchema(table: Table, opts: InferSchemaOptions = {}): DatasetSchema {
  const labelColumn = resolveLabelColumn(table, opts.labelColumn);
  const features = table.columns.filter((c) => c.name !== labelColumn);
  if (features.length === 0)
    throw new DatasetError("EMPTY_COLUMN", `the file has only the label column '${labelColumn}'; it needs at least one feature column`);
  // Without an explicit kind: one text column beside the label is a text dataset, anything else tabular.
  const kind: DatasetKind = opts.kind ?? (features.length === 1 && features[0]!.type === "string" ? "text" : "tabular");
  const schema: DatasetSchema = { kind, columns: table.columns.map((c) => ({ ...c })), labelColumn };

  if (kind === "image") {
    const shape = opts.imageShape ?? squareShape(features.length);
    if (!shape) {
      throw new DatasetError(
        "BAD_IMAGE_SHAPE",
        `an image dataset needs an image shape: ${features.length} pixel columns is not a square image; give [height, width, channels]`,
      );
    }
    schema.imageShape = shape;
  }
  if (kind === "text") {
    const textColumn = opts.textColumn ?? (features.length === 1 ? features[0]!.name : undefined);
    if (!textColumn)
      throw new DatasetError("BAD_TEXT_COLUMN", `a text dataset needs its text column named; columns are: ${listColumns(table)}`);
    columnIndex(table, textColumn);
    if (textColumn === labelColumn)
      throw new DatasetError("BAD_TEXT_COLUMN", `the text column and the label column are both '${textColumn}'`, { column: textColumn });
    schema.textColumn = textColumn;
  }
  return schema;
}

function squareShape(pixels: number): [number, number, number] | null {
  const side = Math.round(Math.sqrt(pixels));
  return side * side === pixels ? [side, side, 1] : null;
}

/** The first value in a column that is present but not a number, with its 1-based row. */
function firstNonNumeric(table: Table, col: number): { row: number; value: unknown } | null {
  for (let r = 0; r < table.rows.length; r++) {
    const v = table.rows[r]![col];
    if (v === null || v === undefined || typeof v === "number") continue;
    if (parseNumber(String(v)) === null) return { row: r + 1, value: v };
  }
  return null;
}

function requireNumeric(table: Table, name: string, why: string): void {
  const col = columnIndex(table, name);
  const bad = firstNonNumeric(table, col);
  if (bad)
    throw new DatasetError("NOT_A_NUMBER", `column '${name}' row ${bad.row}: ${quoteValue(bad.value)} is not a number${why}`, {
      row: bad.row,
      column: name,
    });
  if (table.rows.every((row) => row[col] === null)) {
    throw new DatasetError("EMPTY_COLUMN", `column '${name}' has no values at all; remove it from the file`, { column: name });
  }
}

/**
 * Checks that `table` can be used for `task` as described by `schema`: columns exist, tabular and image features
 * are numeric, image pixel counts match the shape, regression labels are numeric, classification has 2+ classes.
 */
export function validateForTask(table: Table, schema: DatasetSchema, task: Task): void {
  const labelCol = (() => {
    try {
      return columnIndex(table, schema.labelColumn);
    } catch {
      throw new DatasetError(
        "NO_LABEL_COLUMN",
        `the file has no column named '${schema.labelColumn}'; columns are: ${listColumns(table)}`,
        { column: schema.labelColumn },
      );
    }
  })();
  const features = featureColumnNames(table, schema);

  if (schema.kind === "text") {
    const textColumn = schema.textColumn ?? (features.length === 1 ? features[0] : undefined);
    if (!textColumn)
      throw new DatasetError("BAD_TEXT_COLUMN", `a text dataset needs its text column named; columns are: ${listColumns(table)}`);
    columnIndex(table, textColumn);
  } else {
    if (features.length === 0)
      throw new DatasetError(
        "EMPTY_COLUMN",
        `the file has only the label column '${schema.labelColumn}'; it needs at least one feature column`,
      );
    const why =
      schema.kind === "image" ? " (pixel columns must be numbers)" : " (every feature column of a tabular dataset must be numeric)";
    for (const name of features) requireNumeric(table, name, why);
  }
  if (schema.kind === "image") {
    const shape = schema.imageShape;
    const pixels = shape ? shape[0] * shape[1] * shape[2] : 0;
    if (!shape || pixels !== features.length) {
      throw new DatasetError(
        "BAD_IMAGE_SHAPE",
        `the image shape ${shape ? `[${shape.join(", ")}]` : "(none)"} needs ${pixels} pixel columns, the file has ${features.length}`,
      );
    }
  }

  if (task === "regression") {
    requireNumeric(table, schema.labelColumn, "; regression needs a numeric label");
    return;
  }
  const classes = new Set<string>();
  for (const row of table.rows) {
    const v = row[labelCol];
    if (v !== null && v !== undefined) classes.add(String(v));
  }
  if (classes.size < 2) {
    const only = [...classes][0];
    throw new DatasetError(
      "TOO_FEW_CLASSES",
      only === undefined
        ? `the label column '${schema.labelColumn}' has no values`
        : `the label column '${schema.labelColumn}' has only one class (${quoteValue(only)}); classification needs at least two`,
      { column: schema.labelColumn },
    );
  }
  if (classes.size > MAX_CLASSES) {
    throw new DatasetError(
      "TOO_MANY_CLASSES",
      `the label column '${schema.labelColumn}' has ${classes.size} distinct values (limit ${MAX_CLASSES}); is this a regression target?`,
      { column: schema.labelColumn },
    );
  }
}
