/**
 * Datasets: built-in ones registered on first use, and CSV uploads. The raw bytes go to the artifact store
 * under their sha256; the row records schema, row count, origin and licence. The same bytes are never stored twice.
 * Uploads arrive as a file already streamed to disk (server/http/dataset-upload.ts, server/datasets/upload/): they are checked in a worker thread, never
 * parsed on the server's main thread, and never held in memory whole.
 *
 * On the store (issue 16, db/store.ts): uploads, the list and the detail run on SQLite or PostgreSQL. The file is
 * checked and hashed, and put in the (file) artifact store, before the transaction, which looks the bytes up again
 * under the ledger lock, so the same bytes uploaded at once on two servers give one row and one event. Built-in
 * datasets are registered on first use by resolveDataset, which unported callers call synchronously: it stays on
 * SQLite, running the same insert part through runOnSqliteTx; resolveDatasetRow (the runs service's createRunOnStore)
 * and resolveDatasetOn (the orchestrator's run sessions) are its forms on either store, with either artifact store.
 */
import fs from "node:fs";
import path from "node:path";
import { z } from "zod";
import { eq, inArray } from "drizzle-orm";
import { datasets } from "@/db/schema";
import type { Db, Tx } from "@/db/client";
import { PG_LOCK_KEYS } from "@/db/pg-client";
import {
  asStore,
  reader,
  row as firstRow,
  runOnSqliteTx,
  sqliteStore,
  transact,
  type Store,
  type StoreTables,
  type TxBody,
} from "@/db/store";
import type { Actor } from "@/server/audit/ledger";
import { appendEvent } from "@/server/audit/ledger-pg";
import { sha256Hex } from "@/contracts/canonical";
import type { ArtifactStore } from "@/server/artifacts/store";
import { awaitedArtifacts, type AnyArtifactStore } from "@/server/artifacts/async-store";
import { loadBuiltin } from "@/trainer/data/builtin";
import { parseCsv } from "@/trainer/data/csv";
import { DatasetError } from "@/trainer/data/errors";
import type { CsvCaps, CsvScanProgress } from "@/trainer/data/csv-scan";
import { scanCsvInWorker } from "@/server/datasets/upload/scan-client";
import { UPLOAD_LIMIT_SETTINGS, uploadLimits } from "@/server/datasets/upload/limits";
import { inferSchema } from "@/trainer/data/schema";
import type { DatasetSchema } from "@/trainer/types";
import type { BUILTIN_DATASETS } from "@/contracts/training-config";
import { now, requireRole } from "../app-context/service-context";
import type { StoreServiceContext } from "../app-context/store-context";
import { invalidInput, notFound } from "@/server/errors";

type DatasetRow = typeof datasets.$inferSelect;

type NewDataset = {
  name: string;
  source: "builtin" | "upload";
  builtinName: string | null;
  origin: string;
  licence: string;
  sha256: string;
  byteSize: number;
  schema: DatasetSchema;
  rowCount: number;
};

/**
 * Records a dataset and its dataset.create event, unless a dataset with the same bytes exists (then that row, no
 * event): looked up inside the transaction, so two requests storing the same bytes at once give one row.
 */
function* insertDataset(tx: Tx, t: StoreTables, actor: Actor & { id: number }, d: NewDataset): TxBody<DatasetRow> {
  const existing = yield* firstRow(tx.select().from(t.datasets).where(eq(t.datasets.sha256, d.sha256)));
  if (existing) return existing;
  const created = (yield* firstRow(
    tx
      .insert(t.datasets)
      .values({
        name: d.name,
        source: d.source,
        builtinName: d.builtinName,
        origin: d.origin,
        licence: d.licence,
        sha256: d.sha256,
        byteSize: d.byteSize,
        schemaJson: JSON.stringify(d.schema),
        rowCount: d.rowCount,
        createdBy: actor.id,
        createdAt: now(),
      })
      .returning(),
  ))!;
  yield* appendEvent({
    actor,
    action: "dataset.create",
    entityType: "dataset",
    entityId: created.id,
    payload: {
      name: created.name,
      source: created.source,
      builtinName: created.builtinName,
      sha256: d.sha256,
      bytes: created.byteSize,
      rows: created.rowCount,
      columns: d.schema.columns.length,
      labelColumn: d.schema.labelColumn,
      licence: d.licence,
      origin: created.origin,
      schemaSha256: sha256Hex(created.schemaJson),
      createdAt: created.createdAt,
    },
  });
  return created;
}

/** The store's query builder for reads outside transactions, typed as SQLite's like `store.tables`: awaited only. */
async function datasetBySha(store: Store, sha256: string): Promise<DatasetRow | undefined> {
  const { datasets } = store.tables;
  return (await reader(store).select().from(datasets).where(eq(datasets.sha256, sha256)).limit(1))[0];
}

/** Returns the dataset row for a built-in dataset, registering it (audited) on first use. SQLite only (see the header). */
export function ensureBuiltinDataset(
  db: Db,
  artifacts: ArtifactStore,
  actor: Actor & { id: number },
  name: (typeof BUILTIN_DATASETS)[number],
): DatasetRow {
  const b = loadBuiltin(name);
  const existing = db.select().from(datasets).where(eq(datasets.sha256, b.sha256)).get();
  if (existing) return existing;
  artifacts.put(b.bytes);
  const d = builtinDataset(name, b);
  const tables = sqliteStore(db).tables;
  return db.transaction((tx) => runOnSqliteTx(tx, insertDataset(tx, tables, actor, d)), { behavior: "immediate" });
}

/** A built-in dataset's row to insert (the caller puts its bytes in the artifact store first). */
function builtinDataset(name: (typeof BUILTIN_DATASETS)[number], b: ReturnType<typeof loadBuiltin>): NewDataset {
  const rowCount = parseCsv(b.bytes).rows.length;
  return {
    name: b.meta.title,
    source: "builtin",
    builtinName: name,
    origin: b.meta.origin,
    licence: b.meta.licence,
    sha256: b.sha256,
    byteSize: b.bytes.byteLength,
    schema: b.schema,
    rowCount,
  };
}

/** What an upload says about its file, besides the bytes (the upload route reads it from the query string). */
export const uploadMetaSchema = z.object({
  name: z.string().trim().min(1, "give the dataset a name").max(120),
  labelColumn: z.string().trim().max(200).optional(),
  origin: z.string().max(2000).optional(),
  licence: z.string().max(200).optional(),
  /** What the rows are; omitted: inferred (one text column beside the label is text, else tabular). */
  kind: z.enum(["tabular", "image", "text"]).optional(),
  /** image: [height, width, channels]; height × width × channels must equal the number of pixel columns. */
  imageShape: z
    .tuple([
      z.number().int().min(1, "image height must be ≥ 1"),
      z.number().int().min(1, "image width must be ≥ 1"),
      z.number().int().min(1, "image channels must be ≥ 1").max(4, "image channels must be ≤ 4"),
    ])
    .optional(),
  /** text: the column holding the text. */
  textColumn: z.string().trim().max(200).optional(),
});
export type UploadDatasetMeta = z.infer<typeof uploadMetaSchema>;

/** Where uploads are received before they are checked: on the data directory's file system, so a rename stores them. */
export function uploadTempDir(dataDir: string): string {
  const dir = path.join(dataDir, "tmp", "uploads");
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

export type UploadDatasetFileInput = {
  /** The received file (in uploadTempDir); moved into the artifact store on success, left for the caller to remove otherwise. */
  file: string;
  /** SHA-256 of the bytes as received; the parse worker re-hashes the file and must agree. */
  sha256: string;
  meta: UploadDatasetMeta;
  limits?: CsvCaps;
  onProgress?: (p: CsvScanProgress) => void;
  signal?: AbortSignal;
};

/**
 * Registers an uploaded CSV: checks it in a worker (caps, UTF-8, header, rows, column types), infers its schema,
 * stores the file under its sha256 and records the dataset with its audit event. The same bytes are stored once.
 * Either artifact store: the file is moved into the data directory's files, or copied into PostgreSQL's chunks
 * (re-hashed while copied; nothing is stored when it does not hash to the name).
 */
export async function uploadDatasetFile(
  ctx: StoreServiceContext & { artifacts: AnyArtifactStore },
  input: UploadDatasetFileInput,
): Promise<DatasetRow> {
  requireRole(ctx.actor, ["engineer"], "upload datasets");
  const meta = input.meta;
  if (meta.kind !== "image" && meta.imageShape)
    invalidInput(`an image shape applies to image datasets; this upload is ${meta.kind ?? "of an inferred kind"}`);
  if (meta.kind !== "text" && meta.textColumn)
    invalidInput(`a text column applies to text datasets; this upload is ${meta.kind ?? "of an inferred kind"}`);
  try {
    const profile = await scanCsvInWorker(input.file, input.limits ?? uploadLimits(), {
      settings: UPLOAD_LIMIT_SETTINGS,
      onProgress: input.onProgress,
      signal: input.signal,
    });
    if (profile.sha256 !== input.sha256)
      throw new Error(`the received file hashes to ${profile.sha256} on disk but ${input.sha256} as it arrived; nothing was stored`);
    // The schema needs the columns and their types only, never the rows.
    const schema = inferSchema(
      { columns: profile.columns, rows: [] },
      {
        labelColumn: meta.labelColumn || undefined,
        kind: meta.kind,
        imageShape: meta.imageShape,
        textColumn: meta.textColumn || undefined,
      },
    );
    if (schema.kind === "image" && schema.imageShape) {
      // Checked here so the upload, not a later run, says what is wrong.
      const pixels = schema.columns.length - 1;
      const [h, w, c] = schema.imageShape;
      if (h * w * c !== pixels)
        invalidInput(
          `image shape ${h}×${w}×${c} needs ${h * w * c} pixel columns, but the file has ${pixels} besides the label column '${schema.labelColumn}'`,
        );
    }
    const store = asStore(ctx.db);
    const existing = await datasetBySha(store, profile.sha256);
    if (existing) return existing;
    await awaitedArtifacts(ctx.artifacts).putFile(input.file, profile.sha256);
    const d: NewDataset = {
      name: meta.name.trim() || "Uploaded dataset",
      source: "upload",
      builtinName: null,
      origin: meta.origin ?? "",
      licence: meta.licence ?? "",
      sha256: profile.sha256,
      byteSize: profile.bytes,
      schema,
      rowCount: profile.rowCount,
    };
    const actor = ctx.actor;
    return await transact(store, (tx) => insertDataset(tx, store.tables, actor, d), { pgLock: PG_LOCK_KEYS.ledger });
  } catch (e) {
    if (e instanceof DatasetError) invalidInput(e.message);
    throw e;
  }
}

/** Resolves a config's dataset reference to its row, bytes and schema. */
export function resolveDataset(
  db: Db,
  artifacts: ArtifactStore,
  actor: Actor & { id: number },
  ref: { builtin: (typeof BUILTIN_DATASETS)[number] } | { datasetId: string },
) {
  const row =
    "builtin" in ref
      ? ensureBuiltinDataset(db, artifacts, actor, ref.builtin)
      : db
          .select()
          .from(datasets)
          .where(eq(datasets.id, Number(ref.datasetId)))
          .get();
  if (!row) notFound(`dataset ${"datasetId" in ref ? ref.datasetId : ""}`);
  return { row, schema: JSON.parse(row.schemaJson) as DatasetSchema, bytes: () => artifacts.get(row.sha256) };
}

/**
 * resolveDataset's row on either store (the runs service's createRunOnStore, issue 16): the row of an uploaded
 * dataset, or of a built-in one, registered on first use with its dataset.create event (its bytes stored first, the
 * row looked up again under the ledger lock, as ensureBuiltinDataset does).
 */
export async function resolveDatasetRow(
  db: Store | Db,
  artifacts: AnyArtifactStore,
  actor: Actor & { id: number },
  ref: { builtin: (typeof BUILTIN_DATASETS)[number] } | { datasetId: string },
): Promise<DatasetRow> {
  const store = asStore(db);
  if ("datasetId" in ref) {
    // SQLite finds no row for an id that is not a number; PostgreSQL would refuse the parameter instead.
    const id = Number(ref.datasetId);
    const [found] = Number.isSafeInteger(id)
      ? await reader(store).select().from(store.tables.datasets).where(eq(store.tables.datasets.id, id)).limit(1)
      : [];
    if (!found) notFound(`dataset ${ref.datasetId}`);
    return found;
  }
  const b = loadBuiltin(ref.builtin);
  const existing = await datasetBySha(store, b.sha256);
  if (existing) return existing;
  await awaitedArtifacts(artifacts).put(b.bytes);
  const d = builtinDataset(ref.builtin, b);
  return transact(store, (tx) => insertDataset(tx, store.tables, actor, d), { pgLock: PG_LOCK_KEYS.ledger });
}

/** resolveDataset on either store: the row (a built-in one registered on first use), its schema and its bytes. */
export async function resolveDatasetOn(
  db: Store | Db,
  artifacts: AnyArtifactStore,
  actor: Actor & { id: number },
  ref: { builtin: (typeof BUILTIN_DATASETS)[number] } | { datasetId: string },
): Promise<{ row: DatasetRow; schema: DatasetSchema; bytes: () => Promise<Uint8Array> }> {
  const row = await resolveDatasetRow(db, artifacts, actor, ref);
  return { row, schema: JSON.parse(row.schemaJson) as DatasetSchema, bytes: () => awaitedArtifacts(artifacts).get(row.sha256) };
}

export async function listDatasets(db: Store | Db) {
  const store = asStore(db);
  const { datasets } = store.tables;
  const rows = await reader(store).select().from(datasets).orderBy(datasets.id);
  return rows.map((d) => ({ ...d, schema: JSON.parse(d.schemaJson) as DatasetSchema }));
}

/** A dataset with its versions and their splits, each in id order (the same order on both stores). */
export async function getDatasetDetail(db: Store | Db, id: number) {
  const store = asStore(db);
  const read = reader(store);
  const { datasets, datasetVersions, splits } = store.tables;
  const [d] = await read.select().from(datasets).where(eq(datasets.id, id)).limit(1);
  if (!d) notFound(`dataset ${id}`);
  const versions = await read.select().from(datasetVersions).where(eq(datasetVersions.datasetId, id)).orderBy(datasetVersions.id);
  const splitRows = versions.length
    ? await read
        .select()
        .from(splits)
        .where(
          inArray(
            splits.datasetVersionId,
            versions.map((v) => v.id),
          ),
        )
        .orderBy(splits.id)
    : [];
  return {
    ...d,
    schema: JSON.parse(d.schemaJson) as DatasetSchema,
    versions: versions.map((v) => ({
      ...v,
      recipe: JSON.parse(v.recipeJson) as unknown,
      report: JSON.parse(v.reportJson) as unknown,
      splits: splitRows
        .filter((s) => s.datasetVersionId === v.id)
        .map((s) => ({ ...s, spec: JSON.parse(s.specJson) as unknown, manifest: JSON.parse(s.manifestJson) as unknown })),
    })),
  };
}
