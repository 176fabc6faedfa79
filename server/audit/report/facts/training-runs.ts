/**
 * Report facts, section 5: every run of the lineage with what only the report prints about it: backend reason,
 * environment, parameter count, memory estimate, the parsed config, and the per-epoch training curves.
 *
 * Invariant: reads only; curve points in step order, keyed by metric (CURVE_KEYS only).
 */
import { and, asc, inArray } from "drizzle-orm";
import { metrics, runs } from "@/db/schema";
import type { DbOrTx } from "@/db/client";
import type { TrainingConfig } from "@/contracts/training-config";
import type { LineageFacts } from "@/server/lineage/collect";
import { parseJson, type Json } from "./json";

export const CURVE_KEYS = ["loss", "val_loss", "accuracy", "val_accuracy", "mae", "val_mae", "lr"] as const;

export type RunRow = typeof runs.$inferSelect;

/** The runs' rows (by id; the changes section needs the version's own) and the runs as the report prints them. */
export function trainingRunFacts(db: DbOrTx, lineage: LineageFacts) {
  const runIds = lineage.runs.map((r) => r.id);
  const runRows = runIds.length ? db.select().from(runs).where(inArray(runs.id, runIds)).all() : [];
  const runById = new Map(runRows.map((r) => [r.id, r]));
  const curvePoints = runIds.length
    ? db
        .select({ runId: metrics.runId, key: metrics.key, epoch: metrics.epoch, value: metrics.value })
        .from(metrics)
        .where(and(inArray(metrics.runId, runIds), inArray(metrics.key, [...CURVE_KEYS])))
        .orderBy(asc(metrics.step))
        .all()
    : [];
  const training = lineage.runs.map((r) => {
    const row = runById.get(r.id)!;
    const config = JSON.parse(row.configJson) as TrainingConfig;
    const curves: Record<string, { x: number; y: number }[]> = {};
    for (const p of curvePoints.filter((p) => p.runId === r.id)) (curves[p.key] ??= []).push({ x: p.epoch, y: p.value });
    return {
      ...r,
      backendReason: row.backendReason,
      environment: parseJson<Record<string, Json>>(row.environmentJson),
      paramCount: row.paramCount,
      memory: parseJson<Record<string, Json>>(row.memoryJson),
      config,
      curves,
    };
  });
  return { runById, training };
}
