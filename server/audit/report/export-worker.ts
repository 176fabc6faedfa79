/**
 * Worker thread for one report export (export-in-worker.ts drives it). It owns the heavy, read-only phases 1 and 3
 * (export-prepare.ts, export-write.ts) on a read-only connection of its own; the main thread keeps the one write.
 *
 * Protocol (messages in order):
 *   worker → main  { type: "prepared", payload }          phase 1 done (content check, facts, PROV)
 *   main → worker  { type: "recorded", recorded }         the main thread appended "audit.export" and signed
 *                                                         the checkpoint over it (phase 2)
 *   worker → main  { type: "done", result, tarPath? }     phase 3 done: the bundle folder (and the tar) written
 *   worker → main  { type: "error", message }             at any point; nothing more follows
 * main → worker { type: "abort" } before "recorded" ends the worker without writing a bundle.
 */
import fs from "node:fs";
import path from "node:path";
import { parentPort, workerData } from "node:worker_threads";
import Database from "better-sqlite3";
import { drizzle } from "drizzle-orm/better-sqlite3";
import type { Db } from "@/db/client";
import * as schema from "@/db/schema";
import { parseAuditPublicKey } from "@/server/audit/keys";
import { bundleName, type ExportPayload, type RecordedExport, type ReportExportResult } from "./bundle-layout";
import { openPgExportCopy, type PgExportCopy } from "./export-pg-copy";
import { prepareReport } from "./export-prepare";
import { writeReportBundle } from "./export-write";
import { tarDirectory } from "./tar";

/**
 * source: the SQLite data directory (read in place), or the PostgreSQL store's URL (read through a SQLite copy of one
 * snapshot in `copyDir`, a new empty directory the main thread removes too when the worker ends or is stopped, caught
 * up with the ledger rows of phase 2 before phase 3: export-pg-copy.ts).
 * tar: also write the folder as a ustar archive at `path`, top folder `root` (default: bundleName).
 */
export type ExportWorkerInput = {
  source: { kind: "sqlite"; dataDir: string } | { kind: "pg"; url: string; copyDir: string };
  modelVersionId: number;
  outDir: string;
  publicKeyPem: string;
  tar?: { path: string; root?: string };
};
export type ExportWorkerOut =
  { type: "prepared"; payload: ExportPayload } | { type: "done"; result: ReportExportResult } | { type: "error"; message: string };
export type ExportWorkerIn = { type: "recorded"; recorded: RecordedExport } | { type: "abort" };

const input = workerData as ExportWorkerInput;
const port = parentPort!;
const post = (m: ExportWorkerOut) => port.postMessage(m);
const messageOf = (err: unknown) => (err instanceof Error ? err.message : String(err));

async function run(): Promise<void> {
  let copy: PgExportCopy | null = null;
  let sqlite: Database.Database | null = null;
  let outcome: ExportWorkerOut | null = null;
  try {
    if (input.source.kind === "pg") copy = await openPgExportCopy(input.source.url, input.source.copyDir);
    const dataDir = copy?.dataDir ?? (input.source as { dataDir: string }).dataDir;
    sqlite = new Database(path.join(dataDir, "runledger.sqlite"), { readonly: true, fileMustExist: true });
    sqlite.pragma("busy_timeout = 5000");
    const db = drizzle(sqlite, { schema }) as Db;
    const prepared = prepareReport(db, input.modelVersionId);
    const next = new Promise<ExportWorkerIn>((resolve) => port.once("message", resolve));
    post({ type: "prepared", payload: prepared.payload });
    const m = await next;
    if (m.type !== "recorded") return;
    if (copy) await copy.catchUpLedger();
    const result = writeReportBundle(db, parseAuditPublicKey(input.publicKeyPem), prepared, m.recorded, input.outDir);
    if (input.tar) fs.writeFileSync(input.tar.path, tarDirectory(result.dir, input.tar.root ?? bundleName(result.model, result.version)));
    outcome = { type: "done", result };
  } catch (err) {
    outcome = { type: "error", message: messageOf(err) };
  } finally {
    // Before the outcome is posted: the main thread stops the worker when it has it, and the copy is a whole store.
    sqlite?.close();
    await copy?.dispose();
    if (outcome) post(outcome);
    port.close();
  }
}

void run();
