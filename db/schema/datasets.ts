/**
 * Data lineage: dataset (raw bytes) → dataset version (cleaning recipe) → split (partitions).
 * All three are immutable and content-addressed: the same bytes, recipe or split spec
 * resolves to the existing row rather than a new one.
 */
import { sqliteTable, text, integer, uniqueIndex } from "drizzle-orm/sqlite-core";
import { users } from "./users";

export const datasets = sqliteTable("datasets", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  name: text("name").notNull(),
  source: text("source", { enum: ["builtin", "upload"] }).notNull(),
  builtinName: text("builtin_name"),
  /** Where the data came from and under which licence (datasheet). */
  origin: text("origin").notNull().default(""),
  licence: text("licence").notNull().default(""),
  /** sha256 of the raw bytes; the bytes live in the artifact store under this hash. */
  sha256: text("sha256").notNull().unique(),
  byteSize: integer("byte_size").notNull(),
  /** JSON: { columns: [{ name, type: "number" | "string" }], labelColumn, kind: "tabular" | "image" | "text", imageShape? } */
  schemaJson: text("schema_json").notNull(),
  rowCount: integer("row_count").notNull(),
  createdBy: integer("created_by")
    .notNull()
    .references(() => users.id),
  createdAt: text("created_at").notNull(),
});

export const datasetVersions = sqliteTable(
  "dataset_versions",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    datasetId: integer("dataset_id")
      .notNull()
      .references(() => datasets.id),
    /** Canonical JSON of the cleaning steps. */
    recipeJson: text("recipe_json").notNull(),
    recipeSha256: text("recipe_sha256").notNull(),
    /** What each step did: rows dropped, values imputed per column, outliers removed. */
    reportJson: text("report_json").notNull(),
    /** sha256 over the cleaned rows (canonical JSON). */
    sha256: text("sha256").notNull(),
    rowCount: integer("row_count").notNull(),
    createdAt: text("created_at").notNull(),
  },
  // Same recipe on the same bytes can still give different rows (e.g. another label column): the cleaned rows' hash is part of the key.
  (t) => [uniqueIndex("dataset_versions_recipe_rows").on(t.datasetId, t.recipeSha256, t.sha256)],
);

export const splits = sqliteTable(
  "splits",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    datasetVersionId: integer("dataset_version_id")
      .notNull()
      .references(() => datasetVersions.id),
    specJson: text("spec_json").notNull(),
    /** JSON: per partition { count, classBalance, indicesSha256 } and normalisation statistics. */
    manifestJson: text("manifest_json").notNull(),
    /** sha256 of the canonical manifest. */
    sha256: text("sha256").notNull(),
    createdAt: text("created_at").notNull(),
  },
  (t) => [uniqueIndex("splits_manifest").on(t.datasetVersionId, t.sha256)],
);
