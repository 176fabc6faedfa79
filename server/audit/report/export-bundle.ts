/**
 * Exports the auditor's report bundle of one model version: a folder that a verifier checks on its own.
 *
 * Bundle layout (BUNDLE_LAYOUT.md in words; README.txt inside each bundle):
 *   report.html          the human-readable report (prints to PDF)
 *   report.json          { facts, integrity, generatedAt }: everything the page shows, as data
 *   charts/*.svg         training curves, rendered on the server from the recorded metric points
 *   lineage.prov.json    W3C PROV-JSON lineage of the version
 *   events.jsonl, checkpoints.json, public-key.pem   the whole audit ledger (server/audit/bundle.ts format)
 *   key-rotations.json   only when the signing key was rotated: the "audit.keyRotate" events (server/audit/bundle.ts)
 *   trusted-checkpoint.json   the checkpoint the report cites, in the `audit verify --trusted-checkpoint` format
 *   cosignatures.json, witness-keys/   witness cosignatures of the checkpoints and the witnesses used (witness/bundle-files.ts)
 *   facts.json, artifacts/<sha256>   the records the report prints with their covering events, and the version's
 *                        weights file when ≤ 50 MB (server/audit/content/facts-file.ts documents the format)
 *   manifest.json        sha256 and size of every other file
 *   verify-bundle.mjs    standalone verifier, Node standard library only: `node verify-bundle.mjs` in the folder
 *
 * Invariants (what makes the bundle verifiable offline):
 * - The export is recorded BEFORE the checkpoint is signed: an "audit.export" event carries the sha256 of the
 *   report facts and of the PROV document, so the signed tree head covers exactly what the report shows.
 * - The cited checkpoint is signed for this export (fresh), so every cited event has an inclusion proof.
 * - report.html and charts are pure functions of report.json: the verifier re-renders and compares them.
 * - --out FILE.tar produces the same folder as a ustar archive (top folder = FILE without .tar); any other
 *   --out is a directory, which must be empty or absent.
 * - Three phases, one module each: export-prepare.ts (reads: content check, facts, PROV), export-record.ts (the
 *   only write: the export event, then the checkpoint) and export-write.ts (reads: files, proofs, manifest).
 *   exportReportBundle runs them in a row; the browser route runs phases 1 and 3 in a worker thread
 *   (export-in-worker.ts), so its own bundle never holds the renderer. File names: bundle-layout.ts.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { and, desc, eq } from "drizzle-orm";
import type { Db, DbOrTx, Tx } from "@/db/client";
import { row, type StoreTables, type TxBody } from "@/db/store";
import type { Actor } from "@/server/audit/ledger";
import type { AuditKeys } from "@/server/audit/keys";
import { notFound } from "@/server/errors";
import { currentAliasVersionIdIn } from "@/server/registry/aliases";
import { onSqlite } from "@/server/registry/on-store";
import { assertEmptyOutDir, bundleName, type ReportExportResult } from "./bundle-layout";
import { prepareReport } from "./export-prepare";
import { recordReportExport } from "./export-record";
import { writeReportBundle } from "./export-write";
import { tarDirectory } from "./tar";

/** Which model version a request names: an explicit version, an alias (e.g. production), or the latest version. */
export function resolveModelVersion(
  db: DbOrTx,
  modelName: string,
  pick: { version?: number; alias?: string } = {},
): { modelVersionId: number; model: string; version: number } {
  return onSqlite(db, (q, t) => resolveModelVersionIn(q, t, modelName, pick));
}

/** resolveModelVersion as a read part on either store (server/registry/on-store.ts: readOnStore). */
export function* resolveModelVersionIn(
  q: Tx,
  t: StoreTables,
  modelName: string,
  pick: { version?: number; alias?: string } = {},
): TxBody<{ modelVersionId: number; model: string; version: number }> {
  const { models, modelVersions } = t;
  const model = yield* row(q.select().from(models).where(eq(models.name, modelName)).limit(1));
  if (!model) notFound(`model "${modelName}"`);
  let versionId: number | null | undefined;
  if (pick.version !== undefined) {
    versionId = (yield* row(
      q
        .select({ id: modelVersions.id })
        .from(modelVersions)
        .where(and(eq(modelVersions.modelId, model.id), eq(modelVersions.version, pick.version)))
        .limit(1),
    ))?.id;
    if (!versionId) notFound(`version ${pick.version} of model "${modelName}"`);
  } else if (pick.alias !== undefined) {
    versionId = yield* currentAliasVersionIdIn(q, t, model.id, pick.alias);
    if (!versionId) notFound(`a version of "${modelName}" with alias "${pick.alias}"`);
  } else {
    versionId = (yield* row(
      q
        .select({ id: modelVersions.id })
        .from(modelVersions)
        .where(eq(modelVersions.modelId, model.id))
        .orderBy(desc(modelVersions.version))
        .limit(1),
    ))?.id;
    if (!versionId) notFound(`any version of model "${modelName}"`);
  }
  const v = (yield* row(q.select().from(modelVersions).where(eq(modelVersions.id, versionId)).limit(1)))!;
  return { modelVersionId: v.id, model: model.name, version: v.version };
}

/** Writes the bundle into `outDir` (created; must be empty if it exists). Records "audit.export" and signs a checkpoint. */
export function exportReportBundle(
  deps: { db: Db; auditKeys: AuditKeys },
  actor: Actor,
  modelVersionId: number,
  outDir: string,
): ReportExportResult {
  assertEmptyOutDir(outDir);
  const prepared = prepareReport(deps.db, modelVersionId);
  return writeReportBundle(deps.db, deps.auditKeys, prepared, recordReportExport(deps, actor, prepared.payload), outDir);
}

/**
 * Exports the bundle as a tar archive in memory (for the browser download); the temporary folder is removed.
 * `root` names the archive's top folder (default: bundleName).
 */
export function exportReportTar(
  deps: { db: Db; auditKeys: AuditKeys },
  actor: Actor,
  modelVersionId: number,
  root?: string,
): { fileName: string; bytes: Buffer; result: ReportExportResult } {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-report-"));
  try {
    const result = exportReportBundle(deps, actor, modelVersionId, path.join(tmp, "bundle"));
    const top = root ?? bundleName(result.model, result.version);
    return { fileName: `${top}.tar`, bytes: tarDirectory(result.dir, top), result };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** Exports to `out`: a directory, or a .tar file whose top folder is named after the file (`tar xf NAME.tar` gives NAME/). */
export function exportReportTo(
  deps: { db: Db; auditKeys: AuditKeys },
  actor: Actor,
  modelVersionId: number,
  out: string,
): ReportExportResult & { out: string; kind: "directory" | "tar" } {
  if (!out.toLowerCase().endsWith(".tar")) return { ...exportReportBundle(deps, actor, modelVersionId, out), out, kind: "directory" };
  const { bytes, result } = exportReportTar(deps, actor, modelVersionId, path.basename(out).replace(/\.tar$/i, ""));
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, bytes);
  return { ...result, dir: out, out, kind: "tar" };
}
