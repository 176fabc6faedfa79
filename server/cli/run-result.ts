/**
 * The result a training command prints when its run has ended (or stopped: paused, interrupted), shared by `train`
 * and `resume` so both print the same JSON: {runId, status, backend, backendReason, configSha256, weightsSha256,
 * checkpoints, metrics, test, error}. Reads only.
 */
import { eq } from "drizzle-orm";
import { runs, checkpoints, metricSummaries, evaluations } from "@/db/schema";
import type { Db } from "@/db/client";

export function runResult(db: Db, runId: number) {
  const done = db.select().from(runs).where(eq(runs.id, runId)).get()!;
  const cks = db.select().from(checkpoints).where(eq(checkpoints.runId, runId)).orderBy(checkpoints.epoch).all();
  const finalMetrics = Object.fromEntries(
    db
      .select()
      .from(metricSummaries)
      .where(eq(metricSummaries.runId, runId))
      .all()
      .filter((s) => !s.key.startsWith("batch_"))
      .map((s) => [s.key, s.last]),
  );
  const evaluation = db.select().from(evaluations).where(eq(evaluations.runId, runId)).get();
  return {
    runId: done.id,
    status: done.status,
    backend: done.backend,
    backendReason: done.backendReason,
    configSha256: done.configSha256,
    weightsSha256: done.finalWeightsSha256,
    checkpoints: cks.map((c) => ({ epoch: c.epoch, sha256: c.sha256, best: c.isBest })),
    metrics: finalMetrics,
    test: evaluation ? (JSON.parse(evaluation.metricsJson) as unknown) : null,
    error: done.error,
  };
}

/** Prints the run's result (one JSON line with json, else a few lines through log); returns the exit code. */
export function printRunResult(db: Db, runId: number, opts: { json: boolean; log: (s: string) => void }): number {
  const result = runResult(db, runId);
  if (opts.json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else {
    opts.log(`run ${result.runId}: ${result.status} on ${result.backend ?? "?"}${result.error ? ` — ${result.error}` : ""}`);
    for (const [k, v] of Object.entries(result.metrics)) opts.log(`  ${k}: ${v.toFixed(4)}`);
    opts.log(`  weights sha256: ${result.weightsSha256 ?? "-"}`);
  }
  return result.status === "completed" ? 0 : 1;
}
