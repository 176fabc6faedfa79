/**
 * Datasets: built-in ones registered on first use, and CSV uploads. The raw bytes go to the artifact store
 * under their sha256; the row records schema, row count, origin and licence. The same bytes are never stored twice.
 */
import { eq } from "drizzle-orm";
import { datasets, datasetVersions, splits } from "@/db/schema";
import type { Db, DbOrTx } from "@/db/client";
import { appendAuditEvent, type Actor } from "@/server/audit/ledger";
import { sha256Hex } from "@/server/audit/canonical";
import type { ArtifactStore } from "@/server/artifacts/store";
import { loadBuiltin } from "@/trainer/data/builtin";
import { parseCsv } from "@/trainer/data/csv";
import { DatasetError } from "@/trainer/data/errors";
import { inferSchema } from "@/trainer/data/schema";
import type { DatasetSchema } from "@/trainer/types";
import type { BUILTIN_DATASETS } from "@/contracts/training-config";
import { badRequest, notFound, now, requireRole, type ServiceContext } from "./service-context";

export const MAX_UPLOAD_BYTES = 20 * 1024 * 1024;

type DatasetRow = typeof datasets.$inferSelect;

function insertDataset(db: Db, artifacts: ArtifactStore, actor: Actor & { id: number }, d: { name: string; source: "builtin" | "upload"; builtinName: string | null; origin: string; licence: string; bytes: Uint8Array; schema: DatasetSchema; rowCount: number }): DatasetRow {
  const sha256 = sha256Hex(d.bytes);
  const existing = db.select().from(datasets).where(eq(datasets.sha256, sha256)).get();
  if (existing) return existing;
  artifacts.put(d.bytes);
  return db.transaction((tx) => {
    const row = tx
      .insert(datasets)
      .values({ name: d.name, source: d.source, builtinName: d.builtinName, origin: d.origin, licence: d.licence, sha256, byteSize: d.bytes.byteLength, schemaJson: JSON.stringify(d.schema), rowCount: d.rowCount, createdBy: actor.id, createdAt: now() })
      .returning()
      .get();
    appendAuditEvent(tx, { actor, action: "dataset.create", entityType: "dataset", entityId: row.id, payload: { name: row.name, source: row.source, builtinName: row.builtinName, sha256, bytes: row.byteSize, rows: row.rowCount, columns: d.schema.columns.length, labelColumn: d.schema.labelColumn, licence: d.licence, origin: row.origin, schemaSha256: sha256Hex(row.schemaJson), createdAt: row.createdAt } });
    return row;
  });
}

/** Returns the dataset row for a built-in dataset, registering it (audited) on first use. */
export function ensureBuiltinDataset(db: Db, artifacts: ArtifactStore, actor: Actor & { id: number }, name: (typeof BUILTIN_DATASETS)[number]): DatasetRow {
  const b = loadBuiltin(name);
  const existing = db.select().from(datasets).where(eq(datasets.sha256, b.sha256)).get();
  if (existing) return existing;
  const rowCount = parseCsv(b.bytes).rows.length;
  return insertDataset(db, artifacts, actor, { name: b.meta.title, source: "builtin", builtinName: name, origin: b.meta.origin, licence: b.meta.licence, bytes: b.bytes, schema: b.schema, rowCount });
}

export type UploadDatasetInput = {
  name: string;
  csvBase64: string;
  labelColumn?: string;
  origin?: string;
  licence?: string;
  /** What the rows are; omitted: inferred (one text column beside the label is text, else tabular). */
  kind?: DatasetSchema["kind"];
  /** image: [height, width, channels]; height × width × channels must equal the number of pixel columns. */
  imageShape?: [number, number, number];
  /** text: the column holding the text. */
  textColumn?: string;
};

export function uploadDataset(ctx: ServiceContext, input: UploadDatasetInput) {
  requireRole(ctx.actor, ["engineer"], "upload datasets");
  const bytes = new Uint8Array(Buffer.from(input.csvBase64, "base64"));
  if (bytes.byteLength > MAX_UPLOAD_BYTES) badRequest(`the file is ${(bytes.byteLength / 1048576).toFixed(1)} MiB; the limit is ${MAX_UPLOAD_BYTES / 1048576} MiB`);
  if (input.kind !== "image" && input.imageShape) badRequest(`an image shape applies to image datasets; this upload is ${input.kind ?? "of an inferred kind"}`);
  if (input.kind !== "text" && input.textColumn) badRequest(`a text column applies to text datasets; this upload is ${input.kind ?? "of an inferred kind"}`);
  try {
    const table = parseCsv(bytes, { maxBytes: MAX_UPLOAD_BYTES });
    const schema = inferSchema(table, { labelColumn: input.labelColumn || undefined, kind: input.kind, imageShape: input.imageShape, textColumn: input.textColumn || undefined });
    if (schema.kind === "image" && schema.imageShape) {
      // Checked here so the upload, not a later run, says what is wrong.
      const pixels = schema.columns.length - 1;
      const [h, w, c] = schema.imageShape;
      if (h * w * c !== pixels) badRequest(`image shape ${h}×${w}×${c} needs ${h * w * c} pixel columns, but the file has ${pixels} besides the label column '${schema.labelColumn}'`);
    }
    return insertDataset(ctx.db, ctx.artifacts, ctx.actor, { name: input.name.trim() || "Uploaded dataset", source: "upload", builtinName: null, origin: input.origin ?? "", licence: input.licence ?? "", bytes, schema, rowCount: table.rows.length });
  } catch (e) {
    if (e instanceof DatasetError) badRequest(e.message);
    throw e;
  }
}

/** Resolves a config's dataset reference to its row, bytes and schema. */
export function resolveDataset(db: Db, artifacts: ArtifactStore, actor: Actor & { id: number }, ref: { builtin: (typeof BUILTIN_DATASETS)[number] } | { datasetId: string }) {
  const row = "builtin" in ref ? ensureBuiltinDataset(db, artifacts, actor, ref.builtin) : db.select().from(datasets).where(eq(datasets.id, Number(ref.datasetId))).get();
  if (!row) notFound(`dataset ${"datasetId" in ref ? ref.datasetId : ""}`);
  return { row, schema: JSON.parse(row.schemaJson) as DatasetSchema, bytes: () => artifacts.get(row.sha256) };
}

export function listDatasets(db: DbOrTx) {
  return db.select().from(datasets).orderBy(datasets.id).all().map((d) => ({ ...d, schema: JSON.parse(d.schemaJson) as DatasetSchema }));
}

export function getDatasetDetail(db: DbOrTx, id: number) {
  const d = db.select().from(datasets).where(eq(datasets.id, id)).get();
  if (!d) notFound(`dataset ${id}`);
  const versions = db.select().from(datasetVersions).where(eq(datasetVersions.datasetId, id)).all();
  const splitRows = versions.length ? db.select().from(splits).all().filter((s) => versions.some((v) => v.id === s.datasetVersionId)) : [];
  return {
    ...d,
    schema: JSON.parse(d.schemaJson) as DatasetSchema,
    versions: versions.map((v) => ({ ...v, recipe: JSON.parse(v.recipeJson) as unknown, report: JSON.parse(v.reportJson) as unknown, splits: splitRows.filter((s) => s.datasetVersionId === v.id).map((s) => ({ ...s, spec: JSON.parse(s.specJson) as unknown, manifest: JSON.parse(s.manifestJson) as unknown })) })),
  };
}
