/**
 * Report export with the heavy work off the main thread (the browser route uses it; the CLI and tests may keep the
 * synchronous exportReportBundle). A worker thread (export-worker.ts) opens its own read-only connection and runs
 * phase 1 (content check over the whole ledger, facts, PROV) and phase 3 (events.jsonl, proofs, manifest, tar);
 * this thread does only phase 2, the write: "audit.export" and then the checkpoint signed over it, in that order, as
 * the synchronous export does (export-record.ts recordReportExport), then waits a bounded time for the configured
 * witnesses to cosign that checkpoint (recordReportExportCosigned), so phase 3's cosignatures.json includes them.
 * This module and export-record.ts import no renderer: the Next.js route that calls it never bundles react-dom/server.
 * On PostgreSQL (issue 16) the worker is given the store's URL instead of the data directory: it copies one snapshot
 * into a SQLite data directory of its own for phases 1 and 3 (export-worker.ts); this thread records on the store.
 *
 * Invariants:
 * - The worker never writes the database (read-only connection); nothing is recorded unless phase 1 succeeded, and
 *   a bundle is written only for an export that was recorded.
 * - The facts are those of phase 1's read snapshot; events other requests append meanwhile (the main thread is free
 *   now) come after it in the ledger, and in events.jsonl, which phase 3 reads from a later snapshot.
 * - At most MAX_CONCURRENT_EXPORTS run at once per process; more get ExportBusyError (the route answers 429). A
 *   caller reserves its slot synchronously (reserveExportSlot) before its first await, so requests are admitted in
 *   the order they arrived, not in the order their temp folders happened to be created.
 * - The promise settles exactly once; the worker is terminated on timeout or when this side fails.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Worker } from "node:worker_threads";
import type pg from "pg";
import type { Db } from "@/db/client";
import { asStore, type Store } from "@/db/store";
import type { Actor } from "@/server/audit/ledger";
import type { AuditKeys } from "@/server/audit/keys";
import type { ReportExportResult } from "./bundle-layout";
import { recordReportExportCosigned } from "./export-record";
import type { ExportWorkerIn, ExportWorkerInput, ExportWorkerOut } from "./export-worker";

export const MAX_CONCURRENT_EXPORTS = 2;
export const EXPORT_TIMEOUT_MS = 15 * 60 * 1000;
// Resolved from the project root at run time (Next.js bundles server code, so __dirname is not the source folder).
const EXPORT_WORKER_BOOTSTRAP = path.join(process.cwd(), "server", "audit", "report", "export-worker-bootstrap.cjs");

export class ExportBusyError extends Error {
  readonly retryAfterSeconds = 5;
  constructor(running: number) {
    super(`${running} report exports are being written; try again in a few seconds`);
  }
}

const g = globalThis as unknown as { __runledgerExportsRunning?: { n: number } };
const running = (g.__runledgerExportsRunning ??= { n: 0 });

/** A reserved export slot; released exactly once (by the export that took it, or by the caller if it never started). */
export type ExportSlot = { release(): void };

/** Reserves one of the MAX_CONCURRENT_EXPORTS slots now, or throws ExportBusyError. */
export function reserveExportSlot(): ExportSlot {
  if (running.n >= MAX_CONCURRENT_EXPORTS) throw new ExportBusyError(running.n);
  running.n++;
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      running.n--;
    },
  };
}

export type ExportInWorkerOptions = {
  outDir: string;
  tar?: { path: string; root?: string };
  timeoutMs?: number;
  /** A slot the caller reserved earlier; without one, a slot is reserved here. Released when the export settles. */
  slot?: ExportSlot;
};

/** Where the worker reads the store: the SQLite data directory, or the PostgreSQL URL of the store's pool. */
function workerSourceOf(db: Store | Db, dataDir: string): ExportWorkerInput["source"] {
  const store = asStore(db);
  if (store.dialect === "sqlite") return { kind: "sqlite", dataDir };
  const url = (store.db.$client as pg.Pool).options.connectionString;
  if (!url) throw new Error("the PostgreSQL store was not opened from a URL; the report export worker cannot reach it");
  // A new directory for the worker's copy of the store (export-pg-copy.ts); removed when the export settles.
  return { kind: "pg", url, copyDir: fs.mkdtempSync(path.join(os.tmpdir(), "runledger-report-pg-")) };
}

/** Writes the bundle into `outDir` (and the tar, if asked) from a worker; records the export here. */
export function exportReportInWorker(
  deps: { db: Store | Db; auditKeys: AuditKeys; dataDir: string },
  actor: Actor,
  modelVersionId: number,
  opts: ExportInWorkerOptions,
): Promise<ReportExportResult> {
  let slot: ExportSlot;
  try {
    slot = opts.slot ?? reserveExportSlot();
  } catch (err) {
    return Promise.reject(err);
  }
  let source: ExportWorkerInput["source"];
  try {
    source = workerSourceOf(deps.db, deps.dataDir);
  } catch (err) {
    slot.release();
    return Promise.reject(err);
  }
  const input: ExportWorkerInput = {
    source,
    modelVersionId,
    outDir: opts.outDir,
    publicKeyPem: deps.auditKeys.publicKeyPem,
    ...(opts.tar ? { tar: opts.tar } : {}),
  };
  const worker = new Worker(EXPORT_WORKER_BOOTSTRAP, { workerData: input, stdout: false, stderr: false });
  return new Promise<ReportExportResult>((resolve, reject) => {
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (source.kind === "sqlite") {
        slot.release();
        fn();
        void worker.terminate();
        return;
      }
      // PostgreSQL: the worker's copy of the store is gone before the export settles, also when it was stopped first.
      void worker
        .terminate()
        .catch(() => undefined)
        .then(() => fs.promises.rm(source.copyDir, { recursive: true, force: true }))
        .catch(() => undefined)
        .then(() => {
          slot.release();
          fn();
        });
    };
    const timer = setTimeout(
      () =>
        settle(() =>
          reject(
            new Error(`the report export took longer than ${Math.round((opts.timeoutMs ?? EXPORT_TIMEOUT_MS) / 1000)} s and was stopped`),
          ),
        ),
      opts.timeoutMs ?? EXPORT_TIMEOUT_MS,
    );
    const send = (m: ExportWorkerIn) => worker.postMessage(m);
    worker.on("message", (m: ExportWorkerOut) => {
      if (m.type === "prepared") {
        // Phase 2 here, then at most EXPORT_COSIGN_WAIT_MS for the witnesses to cosign its checkpoint (never fails on them).
        recordReportExportCosigned(deps, actor, m.payload).then(
          (recorded) => {
            if (!settled) send({ type: "recorded", recorded });
          },
          (err: unknown) => {
            send({ type: "abort" });
            settle(() => reject(err));
          },
        );
      } else if (m.type === "done") settle(() => resolve(m.result));
      else settle(() => reject(new Error(m.message)));
    });
    worker.on("error", (err) => settle(() => reject(new Error(`the report export worker crashed: ${err.message}`))));
    worker.on("exit", (code) => settle(() => reject(new Error(`the report export worker exited (code ${code}) before finishing`))));
  });
}
