/**
 * The model each compared run produced, side by side (issue 17: compression): its best checkpoint (else its last) with
 * the size of its weights file, its parameter count (and non-zero parameters when the checkpoint recorded them: a
 * compression's), its test-partition accuracy or MSE (the evaluation of that checkpoint), and the inference time a
 * compression measured. Reads only, in a fixed number of queries for all runs (the runs and their checkpoints together,
 * then the chosen checkpoints' evaluations).
 *
 * Invariant: `models[i]` belongs to `runIds[i]`; null when the run has no checkpoint.
 */
import { inArray } from "drizzle-orm";
import { asStore, type StoreOrDb } from "./store";
import { together } from "./together";

export type ComparedModel = {
  checkpointId: number;
  epoch: number;
  sizeBytes: number;
  params: number | null;
  nonzeroParams: number | null;
  /** Test accuracy (classification) or MSE (regression) of this checkpoint, when it was evaluated. */
  accuracy: number | null;
  mse: number | null;
  inferenceUsPerSample: number | null;
  /** A compression: its method and the size of the checkpoint it was derived from. */
  compression: { method: string; parentSizeBytes: number | null } | null;
} | null;

const numberOf = (m: Record<string, unknown>, key: string) => (typeof m[key] === "number" ? m[key] : null);

export async function compareModels(storeOrDb: StoreOrDb, runIds: readonly number[]): Promise<ComparedModel[]> {
  if (runIds.length === 0) return [];
  const store = asStore(storeOrDb);
  const { db } = store;
  const { checkpoints, evaluations, runs } = store.t;
  const [runList, cks] = await together(
    store,
    () =>
      db
        .select({ id: runs.id, paramCount: runs.paramCount, configJson: runs.configJson })
        .from(runs)
        .where(inArray(runs.id, [...runIds])),
    () =>
      db
        .select()
        .from(checkpoints)
        .where(inArray(checkpoints.runId, [...runIds])),
  );
  const runRows = new Map(runList.map((r) => [r.id, r]));
  const chosen = new Map<number, (typeof cks)[number]>();
  for (const c of cks) {
    const held = chosen.get(c.runId);
    if (!held || (c.isBest && !held.isBest) || (c.isBest === held.isBest && c.epoch > held.epoch)) chosen.set(c.runId, c);
  }
  const ckIds = [...chosen.values()].map((c) => c.id);
  const evals = ckIds.length ? await db.select().from(evaluations).where(inArray(evaluations.checkpointId, ckIds)) : [];
  const evalByCk = new Map(evals.map((e) => [e.checkpointId, JSON.parse(e.metricsJson) as Record<string, unknown>]));
  return runIds.map((id) => {
    const c = chosen.get(id);
    if (!c) return null;
    const m = JSON.parse(c.metricsJson) as Record<string, unknown>;
    const e = evalByCk.get(c.id) ?? {};
    const compression = (JSON.parse(runRows.get(id)?.configJson ?? "{}") as { compression?: { method: string } }).compression;
    return {
      checkpointId: c.id,
      epoch: c.epoch,
      sizeBytes: c.bytes,
      params: numberOf(m, "params") ?? runRows.get(id)?.paramCount ?? null,
      nonzeroParams: numberOf(m, "nonzero_params"),
      accuracy: numberOf(e, "accuracy") ?? numberOf(m, "test_accuracy"),
      mse: numberOf(e, "mse") ?? numberOf(m, "test_mse"),
      inferenceUsPerSample: numberOf(m, "inference_us_per_sample"),
      compression: compression ? { method: compression.method, parentSizeBytes: numberOf(m, "parent_size_bytes") } : null,
    };
  });
}
