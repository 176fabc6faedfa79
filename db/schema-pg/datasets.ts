/**
 * PostgreSQL form of db/schema/datasets.ts: the same tables, columns, keys and indexes (db/tests/schema-dialects.test.ts
 * keeps the two in step; db/schema-pg/README.md gives the type mapping). What each column means is documented there.
 */
import { pgTable, text, uniqueIndex, bigint } from "drizzle-orm/pg-core";
import { users } from "./users";

export const datasets = pgTable("datasets", {
  id: bigint("id", { mode: "number" }).primaryKey().generatedByDefaultAsIdentity(),
  name: text("name").notNull(),
  source: text("source", { enum: ["builtin", "upload"] }).notNull(),
  builtinName: text("builtin_name"),
  origin: text("origin").notNull().default(""),
  licence: text("licence").notNull().default(""),
  sha256: text("sha256").notNull().unique(),
  byteSize: bigint("byte_size", { mode: "number" }).notNull(),
  schemaJson: text("schema_json").notNull(),
  rowCount: bigint("row_count", { mode: "number" }).notNull(),
  createdBy: bigint("created_by", { mode: "number" })
    .notNull()
    .references(() => users.id),
  createdAt: text("created_at").notNull(),
});

export const datasetVersions = pgTable(
  "dataset_versions",
  {
    id: bigint("id", { mode: "number" }).primaryKey().generatedByDefaultAsIdentity(),
    datasetId: bigint("dataset_id", { mode: "number" })
      .notNull()
      .references(() => datasets.id),
    recipeJson: text("recipe_json").notNull(),
    recipeSha256: text("recipe_sha256").notNull(),
    reportJson: text("report_json").notNull(),
    sha256: text("sha256").notNull(),
    rowCount: bigint("row_count", { mode: "number" }).notNull(),
    createdAt: text("created_at").notNull(),
  },
  (t) => [uniqueIndex("dataset_versions_recipe_rows").on(t.datasetId, t.recipeSha256, t.sha256)],
);

export const splits = pgTable(
  "splits",
  {
    id: bigint("id", { mode: "number" }).primaryKey().generatedByDefaultAsIdentity(),
    datasetVersionId: bigint("dataset_version_id", { mode: "number" })
      .notNull()
      .references(() => datasetVersions.id),
    specJson: text("spec_json").notNull(),
    manifestJson: text("manifest_json").notNull(),
    sha256: text("sha256").notNull(),
    createdAt: text("created_at").notNull(),
  },
  (t) => [uniqueIndex("splits_manifest").on(t.datasetVersionId, t.sha256)],
);
