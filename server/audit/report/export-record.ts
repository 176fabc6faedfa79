/**
 * Phase 2 of a report export, the only write: the "audit.export" event (carrying the sha256 of the report facts,
 * the PROV document and facts.json), then a checkpoint signed over it; optionally followed by a bounded wait
 * (≤ EXPORT_COSIGN_WAIT_MS) while that checkpoint is pushed to the configured witnesses (witness/fresh-cosign.ts),
 * so phase 3's cosignatures.json holds their cosignatures. A witness that is down or slow never fails the export.
 *
 * Invariants: the export is recorded BEFORE the checkpoint is signed, so the signed tree head covers exactly what
 * the report shows; imports no renderer (the browser route runs this phase on its main thread, export-in-worker.ts).
 */
import type { Db } from "@/db/client";
import { appendAuditEvent, type Actor } from "@/server/audit/ledger";
import { createAuditCheckpoint } from "@/server/audit/checkpoints";
import type { AuditKeys } from "@/server/audit/keys";
import { cosignFreshCheckpoint } from "@/server/audit/witness/fresh-cosign";
import type { ExportPayload, RecordedExport } from "./bundle-layout";

type Deps = { db: Db; auditKeys: AuditKeys };
export type CosignWaitOptions = { waitMs?: number; env?: Record<string, string | undefined>; log?: (line: string) => void };

/** Records "audit.export", then signs the checkpoint that covers it. */
export function recordReportExport(deps: Deps, actor: Actor, payload: ExportPayload): RecordedExport {
  const exportEvent = deps.db.transaction((tx) =>
    appendAuditEvent(tx, { actor, action: "audit.export", entityType: "modelVersion", entityId: payload.modelVersionId, payload }),
  );
  const { checkpoint } = createAuditCheckpoint(deps.db, deps.auditKeys, `auditor's report of ${payload.model} v${payload.version}`);
  return { exportEventSeq: exportEvent.seq, checkpoint };
}

/** Phase 2, then the bounded wait for the witnesses' cosignatures of the checkpoint it signed. */
export async function recordReportExportCosigned(
  deps: Deps,
  actor: Actor,
  payload: ExportPayload,
  opts: CosignWaitOptions = {},
): Promise<RecordedExport> {
  const recorded = recordReportExport(deps, actor, payload);
  return { ...recorded, witnessing: await cosignFreshCheckpoint(deps, recorded.checkpoint, opts) };
}
