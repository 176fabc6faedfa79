/**
 * Report facts, section 3: the in-flight decisions of the lineage's runs, i.e. the live interventions that took effect
 * while a run trained (pause, resume, stop, changed settings): who asked, the epoch and step where it took effect, each
 * path old → new, the rationale, the metrics snapshot at that boundary, the checkpoint it is bound to, and its effect
 * on the watched metric over the following epochs.
 *
 * Invariants: reads only; applied interventions only (each has its decision, which section 3's decision history prints
 * and the content check compares with the ledger), ordered by decision id; the run.interventionApplied event of each
 * is named by seq (cited-events.ts cites the intervention's events), so a reader can check epoch, step and snapshot
 * against the ledger.
 */
import { and, asc, eq, inArray } from "drizzle-orm";
import { auditEvents, runInterventions } from "@/db/schema";
import type { DbOrTx } from "@/db/client";
import type { LineageFacts } from "@/server/lineage/collect";
import { listInterventionsWithEffects } from "@/server/runs/pilot-effects";

export function interventionFacts(db: DbOrTx, lineage: LineageFacts) {
  const runIds = lineage.runs.map((r) => r.id);
  const withAny = runIds.length
    ? new Set(
        db
          .select({ runId: runInterventions.runId })
          .from(runInterventions)
          .where(and(inArray(runInterventions.runId, runIds), eq(runInterventions.status, "applied")))
          .all()
          .map((r) => r.runId),
      )
    : new Set<number>();
  const applied = runIds
    .filter((id) => withAny.has(id))
    .flatMap((id) => listInterventionsWithEffects(db, id).filter((i) => i.status === "applied" && i.decision !== null));
  const seqOf = new Map(
    (applied.length
      ? db
          .select({ entityId: auditEvents.entityId, seq: auditEvents.seq })
          .from(auditEvents)
          .where(
            and(
              eq(auditEvents.entityType, "intervention"),
              eq(auditEvents.action, "run.interventionApplied"),
              inArray(
                auditEvents.entityId,
                applied.map((i) => String(i.id)),
              ),
            ),
          )
          .orderBy(asc(auditEvents.seq))
          .all()
      : []
    ).map((e) => [Number(e.entityId), e.seq]),
  );
  return applied
    .sort((a, b) => a.decision!.id - b.decision!.id)
    .map((i) => ({
      id: i.id,
      runId: i.runId,
      runName: lineage.runs.find((r) => r.id === i.runId)?.name ?? `run #${i.runId}`,
      decisionId: i.decision!.id,
      kind: i.kind,
      changes: i.changes,
      rationale: i.rationale,
      requestedBy: i.requestedBy.name,
      requestedAt: i.requestedAt,
      appliedAtEpoch: i.appliedAtEpoch,
      appliedAtStep: i.appliedAtStep,
      appliedAt: i.appliedAt,
      checkpointId: i.checkpointId,
      metricsSnapshot: i.metricsSnapshot,
      effect: i.effect,
      appliedEventSeq: seqOf.get(i.id) ?? null,
    }));
}
export type InterventionFact = ReturnType<typeof interventionFacts>[number];
