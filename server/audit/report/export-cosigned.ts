/**
 * Report exports whose own fresh checkpoint is cosigned before the bundle is written: phase 1, then phase 2 with
 * the bounded wait for the witnesses (export-record.ts recordReportExportCosigned), then phase 3, whose
 * cosignatures.json therefore holds the new cosignatures, and records per witness whether it cosigned
 * ("exportCheckpoint"; README.txt says it too). A witness that is down or slow never fails the export.
 * Used by the CLI (`export`); the browser route runs the same phases through export-in-worker.ts.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Db } from "@/db/client";
import type { Actor } from "@/server/audit/ledger";
import type { AuditKeys } from "@/server/audit/keys";
import { assertEmptyOutDir, bundleName, type RecordedExport, type ReportExportResult } from "./bundle-layout";
import { prepareReport } from "./export-prepare";
import { recordReportExportCosigned, type CosignWaitOptions } from "./export-record";
import { writeReportBundle } from "./export-write";
import { tarDirectory } from "./tar";

type Deps = { db: Db; auditKeys: AuditKeys };

/** As exportReportBundle (export-bundle.ts), with the export's checkpoint cosigned first when a witness is up. */
export async function exportReportBundleCosigned(
  deps: Deps,
  actor: Actor,
  modelVersionId: number,
  outDir: string,
  opts: CosignWaitOptions = {},
): Promise<ReportExportResult & { witnessing: RecordedExport["witnessing"] }> {
  assertEmptyOutDir(outDir);
  const prepared = prepareReport(deps.db, modelVersionId);
  const recorded = await recordReportExportCosigned(deps, actor, prepared.payload, opts);
  return { ...writeReportBundle(deps.db, deps.auditKeys, prepared, recorded, outDir), witnessing: recorded.witnessing ?? null };
}

/** As exportReportTo: a directory, or a .tar file whose top folder is named after the file. */
export async function exportReportToCosigned(deps: Deps, actor: Actor, modelVersionId: number, out: string, opts: CosignWaitOptions = {}) {
  if (!out.toLowerCase().endsWith(".tar"))
    return { ...(await exportReportBundleCosigned(deps, actor, modelVersionId, out, opts)), out, kind: "directory" as const };
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-report-"));
  try {
    const result = await exportReportBundleCosigned(deps, actor, modelVersionId, path.join(tmp, "bundle"), opts);
    const top = path.basename(out).replace(/\.tar$/i, "") || bundleName(result.model, result.version);
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, tarDirectory(result.dir, top));
    return { ...result, dir: out, out, kind: "tar" as const };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
