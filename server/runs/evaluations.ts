/**
 * On-demand evaluation of a run's checkpoint on the test partition of the run's split, requested by an engineer
 * or a reviewer (auditors only read). The trainer works in a worker thread; the result is recorded with its
 * audit event ("evaluation.create") in one synchronous transaction.
 *
 * Invariants:
 * - The data is re-prepared from the run's recorded dataset bytes and config; the split it produces must hash
 *   to the run's recorded split, else nothing is recorded (the numbers would describe other data).
 * - The evaluation is recorded with the digest of exactly the test data it was computed on (dataSha256, as
 *   the trainer computes it), the split id, the checkpoint id and the requester.
 * - A split with an empty test partition is refused before any work, with a message that says how to fix it.
 */
import { eq } from "drizzle-orm";
import { z } from "zod";
import { checkpoints, evaluations, runs, splits } from "@/db/schema";
import type { TrainingConfig } from "@/contracts/training-config";
import { appendAuditEvent } from "@/server/audit/ledger";
import { canonicalJson, sha256Canonical } from "@/contracts/canonical";
import { evaluateInWorker, TrainerTaskError } from "@/trainer/worker-client";
import type { BackendName, SplitManifest, TrainJob } from "@/trainer/types";
import { defaultBackend, parentForJob, runDatasetForJob } from "./trainer-tasks";
import { now, requireRole, type ServiceContext } from "../app-context/service-context";
import { conflict, invalidInput, notFound } from "@/server/errors";

export const EVALUATION_ROLES = ["engineer", "reviewer"] as const;

export const evaluateCheckpointInput = z.object({ runId: z.number().int(), checkpointId: z.number().int() });

export async function evaluateRunCheckpoint(ctx: ServiceContext, raw: z.input<typeof evaluateCheckpointInput>) {
  requireRole(ctx.actor, EVALUATION_ROLES, "request evaluations");
  const { runId, checkpointId } = evaluateCheckpointInput.parse(raw);
  const run = ctx.db.select().from(runs).where(eq(runs.id, runId)).get();
  if (!run) notFound(`run ${runId}`);
  const ck = ctx.db.select().from(checkpoints).where(eq(checkpoints.id, checkpointId)).get();
  if (!ck || ck.runId !== runId) notFound(`checkpoint ${checkpointId} of run ${runId}`);
  const split = run.splitId === null ? undefined : ctx.db.select().from(splits).where(eq(splits.id, run.splitId)).get();
  if (!split) invalidInput(`run ${runId} has no recorded split (its data was never prepared), so it has no test partition to evaluate on`);
  const manifest = JSON.parse(split.manifestJson) as SplitManifest;
  if (manifest.partitions.test.count === 0) {
    invalidInput(
      `run ${runId}'s split has an empty test partition (test ratio ${manifest.ratios.test}); nothing to evaluate on. Fork the run with a test ratio above 0 to evaluate on held-out data`,
    );
  }

  const config = JSON.parse(run.configJson) as TrainingConfig;
  const job: TrainJob = {
    config,
    dataset: runDatasetForJob(ctx, run),
    ...(run.parentCheckpointId !== null ? { parent: parentForJob(ctx, run.parentCheckpointId, `run ${runId}'s parent checkpoint`) } : {}),
    // The run's own backend, so the numbers are comparable with (and for the best checkpoint equal to) the trainer's.
    backend: (run.backend as BackendName | null) ?? defaultBackend(),
  };
  let out;
  try {
    out = await evaluateInWorker(job, { weights: ctx.artifacts.get(ck.sha256), sha256: ck.sha256 });
  } catch (e) {
    if (e instanceof TrainerTaskError) invalidInput(`could not evaluate checkpoint ${checkpointId}: ${e.message}`);
    throw e;
  }
  if (out.splitSha256 !== split.sha256) {
    conflict(
      `the data prepared now gives split ${out.splitSha256.slice(0, 12)}…, not the run's recorded split ${split.sha256.slice(0, 12)}…; the evaluation was not recorded`,
    );
  }

  const { confusion, ...metrics } = out.result as typeof out.result & { confusion?: unknown };
  return ctx.db.transaction((tx) => {
    const row = tx
      .insert(evaluations)
      .values({
        runId,
        checkpointId: ck.id,
        splitId: split.id,
        partition: out.partition,
        dataSha256: out.dataSha256,
        metricsJson: canonicalJson(metrics),
        confusionJson: confusion ? canonicalJson(confusion) : null,
        source: "requested",
        createdBy: ctx.actor.id,
        createdAt: now(),
      })
      .returning()
      .get();
    appendAuditEvent(tx, {
      actor: ctx.actor,
      action: "evaluation.create",
      entityType: "evaluation",
      entityId: row.id,
      payload: {
        runId,
        checkpointId: ck.id,
        checkpointSha256: ck.sha256,
        epoch: ck.epoch,
        partition: out.partition,
        dataSha256: out.dataSha256,
        splitId: split.id,
        splitSha256: split.sha256,
        testRows: out.testCount,
        backend: out.backend,
        requested: true,
        source: row.source,
        createdAt: row.createdAt,
        metricsSha256: sha256Canonical(out.result),
      },
    });
    return {
      id: row.id,
      runId,
      checkpointId: ck.id,
      epoch: ck.epoch,
      partition: row.partition,
      dataSha256: row.dataSha256,
      backend: out.backend,
      result: out.result,
    };
  });
}
