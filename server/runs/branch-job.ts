/**
 * How a rollback branch trains, on either store (issue 16; the orchestrator's run sessions ask). A branch trains from the
 * exact-resume state of its parent checkpoint (another run's, by run and epoch), with its changed settings applied on
 * top (TrainJob.resumeApply), until it has checkpoints of its own (then it resumes like any run). Its model is built
 * like the source's (a fine-tune's grandparent weights).
 *
 * Invariants: reads only (rows, the resume state, parent weights); the same answer on both stores.
 */
import { eq } from "drizzle-orm";
import type { Db } from "@/db/client";
import type { runs } from "@/db/schema";
import { asStore, reader, readPart, type Store } from "@/db/store";
import { trainingConfigSchema, type TrainingConfig } from "@/contracts/training-config";
import { getConfigPath, PILOTABLE_PATHS, settingsPatchOf, type ConfigChange } from "@/contracts/pilot-config";
import type { TrainJob } from "@/trainer/types";
import type { AnyArtifactStore } from "@/server/artifacts/async-store";
import { branchBaseIn } from "./pilot";
import { loadResumeStateOn } from "./resume-states";
import { parentForJobOn } from "./trainer-tasks";

type RunRow = typeof runs.$inferSelect;

/** What a branch's job starts from (the fields of TrainJob branchJobOfOn sets). */
export type BranchJob = { parent: TrainJob["parent"]; resume?: NonNullable<TrainJob["resume"]>; resumeApply?: TrainJob["resumeApply"] };

/** The pilotable settings that differ between a branch's base (the source's effective config there) and its config. */
export function branchChanges(base: TrainingConfig, config: TrainingConfig): ConfigChange[] {
  return Object.keys(PILOTABLE_PATHS)
    .map((path) => ({ path, oldValue: getConfigPath(base, path) ?? null, newValue: getConfigPath(config, path) ?? null }))
    .filter((c) => JSON.stringify(c.oldValue) !== JSON.stringify(c.newValue));
}

/** The config a branch from the run's checkpoint at `epoch` starts from (pilot.ts branchBaseIn), outside a transaction. */
export async function branchBaseOn(db: Store | Db, runId: number, epoch: number): Promise<TrainingConfig> {
  const store = asStore(db);
  return readPart(store, (q) => branchBaseIn(q, store.tables, runId, epoch));
}

/**
 * For a branch run: the job's parent (a fine-tune source's own parent checkpoint, else none: the branch's parent
 * checkpoint is where it continues, not a model to fine-tune) and, until it has checkpoints of its own, the resume
 * state of its parent checkpoint with the branch's changes to apply on top. null for any other run.
 */
export async function branchJobOfOn(
  deps: { db: Store | Db; artifacts: AnyArtifactStore; dataDir: string },
  run: RunRow,
): Promise<BranchJob | null> {
  if (run.origin !== "branch" || run.parentCheckpointId === null) return null;
  const store = asStore(deps.db);
  const { checkpoints } = store.tables;
  const read = reader(store);
  const config = trainingConfigSchema.parse(JSON.parse(run.configJson));
  const parent = config.fineTune ? await parentForJobOn(deps, config.fineTune.parentCheckpointId) : undefined;
  const [own] = await read.select({ id: checkpoints.id }).from(checkpoints).where(eq(checkpoints.runId, run.id)).limit(1);
  if (own) return { parent };
  const [ck] = await read.select().from(checkpoints).where(eq(checkpoints.id, run.parentCheckpointId)).limit(1);
  if (!ck) throw new Error(`branch run ${run.id}: its parent checkpoint ${run.parentCheckpointId} does not exist`);
  const resume = await loadResumeStateOn(deps, { runId: ck.runId, epoch: ck.epoch });
  if (!resume) throw new Error(`branch run ${run.id}: checkpoint ${ck.id} (run ${ck.runId}, epoch ${ck.epoch}) has no resume state`);
  const changes = branchChanges(await branchBaseOn(store, ck.runId, ck.epoch), config);
  const resumeApply = changes.length > 0 ? (settingsPatchOf(changes, config) as TrainJob["resumeApply"]) : undefined;
  return { parent, resume, ...(resumeApply ? { resumeApply } : {}) };
}
