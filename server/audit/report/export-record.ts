/**
 * Phase 2 of a report export, the only write: the "audit.export" event (carrying the sha256 of the report facts,
 * the PROV document and facts.json), then a checkpoint signed over it; optionally followed by a bounded wait
 * (≤ EXPORT_COSIGN_WAIT_MS) while that checkpoint is pushed to the configured witnesses (witness/fresh-cosign.ts),
 * so phase 3's cosignatures.json holds their cosignatures. A witness that is down or slow never fails the export.
 *
 * Invariants: the export is recorded BEFORE the checkpoint is signed, so the signed tree head covers exactly what
 * the report shows; imports no renderer (the browser route runs this phase on its main thread, export-in-worker.ts).
 * recordReportExportOn takes either store (issue 16): on PostgreSQL the event is appended under the ledger's
 * advisory lock and the checkpoint signed by createAuditCheckpointOn, which refuses a log whose events since the
 * previous checkpoint do not check (such a store gets no export checkpoint, so no bundle).
 */
import type { Db } from "@/db/client";
import { PG_LOCK_KEYS } from "@/db/pg-client";
import { asStore, transact, type Store } from "@/db/store";
import { appendAuditEvent, type Actor } from "@/server/audit/ledger";
import { appendEvent } from "@/server/audit/ledger-pg";
import { createAuditCheckpoint, createAuditCheckpointOn } from "@/server/audit/checkpoints";
import type { AuditKeys } from "@/server/audit/keys";
import { cosignFreshCheckpoint } from "@/server/audit/witness/fresh-cosign";
import type { ExportPayload, RecordedExport } from "./bundle-layout";

type Deps = { db: Db; auditKeys: AuditKeys };
type StoreDeps = { db: Store | Db; auditKeys: AuditKeys };
export type CosignWaitOptions = { waitMs?: number; env?: Record<string, string | undefined>; log?: (line: string) => void };

/** Records "audit.export", then signs the checkpoint that covers it. */
export function recordReportExport(deps: Deps, actor: Actor, payload: ExportPayload): RecordedExport {
  const exportEvent = deps.db.transaction((tx) =>
    appendAuditEvent(tx, { actor, action: "audit.export", entityType: "modelVersion", entityId: payload.modelVersionId, payload }),
  );
  const { checkpoint } = createAuditCheckpoint(deps.db, deps.auditKeys, `auditor's report of ${payload.model} v${payload.version}`);
  return { exportEventSeq: exportEvent.seq, checkpoint };
}

/** recordReportExport on either store: "audit.export", then the checkpoint that covers it. */
export async function recordReportExportOn(deps: StoreDeps, actor: Actor, payload: ExportPayload): Promise<RecordedExport> {
  const store = asStore(deps.db);
  if (store.dialect === "sqlite") return recordReportExport({ db: store.db, auditKeys: deps.auditKeys }, actor, payload);
  const exportEvent = await transact(
    store,
    function* () {
      return yield* appendEvent({ actor, action: "audit.export", entityType: "modelVersion", entityId: payload.modelVersionId, payload });
    },
    { pgLock: PG_LOCK_KEYS.ledger },
  );
  const { checkpoint } = await createAuditCheckpointOn(store, deps.auditKeys, `auditor's report of ${payload.model} v${payload.version}`);
  return { exportEventSeq: exportEvent.seq, checkpoint };
}

/** Phase 2 (either store), then the bounded wait for the witnesses' cosignatures of the checkpoint it signed. */
export async function recordReportExportCosigned(
  deps: StoreDeps,
  actor: Actor,
  payload: ExportPayload,
  opts: CosignWaitOptions = {},
): Promise<RecordedExport> {
  const recorded = await recordReportExportOn(deps, actor, payload);
  return { ...recorded, witnessing: await cosignFreshCheckpoint(deps, recorded.checkpoint, opts) };
}
