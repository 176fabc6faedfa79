/**
 * The result a training command prints when its run has ended (or stopped: paused, interrupted), shared by `train`
 * and `resume` so both print the same JSON: {runId, status, backend, backendReason, configSha256, weightsSha256,
 * checkpoints, metrics, test, error}. Reads only.
 *
 * One read part (runResultIn) on either store (issue 16): `runResult`/`printRunResult` synchronously on SQLite for the
 * commands still on it, `runResultOn`/`printRunResultOn` awaited on either store. Rows come in a fixed order (metrics by
 * key in byte order, checkpoints by epoch, the first evaluation by id), so both stores print the same JSON.
 */
import { asc, eq } from "drizzle-orm";
import * as schema from "@/db/schema";
import type { Db, Tx } from "@/db/client";
import { asStore, byteOrder, readPart, row, rows, runOnSqliteTx, type Store, type StoreTables, type TxBody } from "@/db/store";

type RunRow = typeof schema.runs.$inferSelect;
export type RunResult = {
  runId: number;
  status: RunRow["status"];
  backend: RunRow["backend"];
  backendReason: RunRow["backendReason"];
  configSha256: string;
  weightsSha256: RunRow["finalWeightsSha256"];
  checkpoints: { epoch: number; sha256: string; best: boolean }[];
  metrics: Record<string, number>;
  test: unknown;
  error: RunRow["error"];
};

export function* runResultIn(q: Tx, t: StoreTables, store: Store, runId: number): TxBody<RunResult> {
  const { runs, checkpoints, metricSummaries, evaluations } = t;
  const done = (yield* row(q.select().from(runs).where(eq(runs.id, runId)).limit(1)))!;
  const cks = yield* rows(q.select().from(checkpoints).where(eq(checkpoints.runId, runId)).orderBy(asc(checkpoints.epoch)));
  const summaries = yield* rows(
    q
      .select({ key: metricSummaries.key, last: metricSummaries.last })
      .from(metricSummaries)
      .where(eq(metricSummaries.runId, runId))
      .orderBy(byteOrder(store, metricSummaries.key)),
  );
  const finalMetrics = Object.fromEntries(summaries.filter((s) => !s.key.startsWith("batch_")).map((s) => [s.key, s.last]));
  const evaluation = yield* row(q.select().from(evaluations).where(eq(evaluations.runId, runId)).orderBy(asc(evaluations.id)).limit(1));
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

export function runResult(db: Db, runId: number): RunResult {
  return runOnSqliteTx(db as unknown as Tx, runResultIn(db as unknown as Tx, schema, asStore(db), runId));
}

export function runResultOn(db: Store | Db, runId: number): Promise<RunResult> {
  const store = asStore(db);
  return readPart(store, (q) => runResultIn(q, store.tables, store, runId));
}

/** Prints the run's result (one JSON line with json, else a few lines through log); returns the exit code. */
export function printRunResult(db: Db, runId: number, opts: { json: boolean; log: (s: string) => void }): number {
  return printResult(runResult(db, runId), opts);
}

export async function printRunResultOn(db: Store | Db, runId: number, opts: { json: boolean; log: (s: string) => void }): Promise<number> {
  return printResult(await runResultOn(db, runId), opts);
}

function printResult(result: RunResult, opts: { json: boolean; log: (s: string) => void }): number {
  if (opts.json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else {
    opts.log(`run ${result.runId}: ${result.status} on ${result.backend ?? "?"}${result.error ? ` — ${result.error}` : ""}`);
    for (const [k, v] of Object.entries(result.metrics)) opts.log(`  ${k}: ${v.toFixed(4)}`);
    opts.log(`  weights sha256: ${result.weightsSha256 ?? "-"}`);
  }
  return result.status === "completed" ? 0 : 1;
}
