/**
 * On-demand evaluation of a run's checkpoint on the test partition of the run's split, requested by an engineer
 * or a reviewer (auditors only read). The trainer works in a worker thread; the result is recorded with its
 * audit event ("evaluation.create") in one transaction, on either store (db/store.ts: a generator body, under the
 * ledger lock on PostgreSQL), with the weights and data read from either artifact store.
 *
 * Invariants:
 * - The data is re-prepared from the run's recorded dataset bytes and config; the split it produces must hash
 *   to the run's recorded split, else nothing is recorded (the numbers would describe other data).
 * - The evaluation is recorded with the digest of exactly the test data it was computed on (dataSha256, as
 *   the trainer computes it), the split id, the checkpoint id and the requester.
 * - A split with an empty test partition is refused before any work, with a message that says how to fix it.
 * - The checkpoint's weights and the run's data are read through the artifact store, which re-hashes them: stored
 *   bytes that do not hash to the recorded SHA-256 (tampered, truncated) or are missing are refused with a conflict
 *   error before any evaluation, and nothing is recorded.
 */
import { eq } from "drizzle-orm";
import { z } from "zod";
import { PG_LOCK_KEYS } from "@/db/pg-client";
import { asStore, reader, row, transact } from "@/db/store";
import type { TrainingConfig } from "@/contracts/training-config";
import { ArtifactIntegrityError } from "@/contracts/artifact-layout";
import { awaitedArtifacts, type AnyArtifactStore } from "@/server/artifacts/async-store";
import { appendEvent } from "@/server/audit/ledger-pg";
import { canonicalJson, sha256Canonical } from "@/contracts/canonical";
import { evaluateInWorker, TrainerTaskError } from "@/trainer/worker-client";
import type { BackendName, SplitManifest, TrainJob } from "@/trainer/types";
import { defaultBackend, parentForJobOn, runDatasetForJobOn } from "./trainer-tasks";
import { now, requireRole } from "../app-context/service-context";
import type { StoreServiceContext } from "../app-context/store-context";
import { conflict, invalidInput, notFound } from "@/server/errors";

export const EVALUATION_ROLES = ["engineer", "reviewer"] as const;

export const evaluateCheckpointInput = z.object({ runId: z.number().int(), checkpointId: z.number().int() });

export async function evaluateRunCheckpoint(
  ctx: StoreServiceContext & { artifacts: AnyArtifactStore },
  raw: z.input<typeof evaluateCheckpointInput>,
) {
  requireRole(ctx.actor, EVALUATION_ROLES, "request evaluations");
  const { runId, checkpointId } = evaluateCheckpointInput.parse(raw);
  const store = asStore(ctx.db);
  const { checkpoints, evaluations, runs, splits } = store.tables;
  const read = reader(store);
  const [run] = await read.select().from(runs).where(eq(runs.id, runId)).limit(1);
  if (!run) notFound(`run ${runId}`);
  const [ck] = await read.select().from(checkpoints).where(eq(checkpoints.id, checkpointId)).limit(1);
  if (!ck || ck.runId !== runId) notFound(`checkpoint ${checkpointId} of run ${runId}`);
  const [split] = run.splitId === null ? [] : await read.select().from(splits).where(eq(splits.id, run.splitId)).limit(1);
  if (!split) invalidInput(`run ${runId} has no recorded split (its data was never prepared), so it has no test partition to evaluate on`);
  const manifest = JSON.parse(split.manifestJson) as SplitManifest;
  if (manifest.partitions.test.count === 0) {
    invalidInput(
      `run ${runId}'s split has an empty test partition (test ratio ${manifest.ratios.test}); nothing to evaluate on. Fork the run with a test ratio above 0 to evaluate on held-out data`,
    );
  }

  const config = JSON.parse(run.configJson) as TrainingConfig;
  const artifacts = awaitedArtifacts(ctx.artifacts);
  if (!(await artifacts.has(ck.sha256)))
    conflict(`the weights of checkpoint ${checkpointId} (SHA-256 ${ck.sha256}) are missing from the artifact store; not evaluated`);
  let job: TrainJob;
  let weights: Uint8Array;
  try {
    job = {
      config,
      dataset: await runDatasetForJobOn(ctx, run),
      ...(run.parentCheckpointId !== null
        ? { parent: await parentForJobOn(ctx, run.parentCheckpointId, `run ${runId}'s parent checkpoint`) }
        : {}),
      // The run's own backend, so the numbers are comparable with (and for the best checkpoint equal to) the trainer's.
      backend: (run.backend as BackendName | null) ?? defaultBackend(),
    };
    weights = await artifacts.get(ck.sha256);
  } catch (e) {
    // The artifact store re-hashes every read: bytes that are not the recorded ones are never evaluated.
    if (e instanceof ArtifactIntegrityError)
      conflict(
        `the stored data or weights of checkpoint ${checkpointId} do not match their recorded SHA-256 (${e.message}); not evaluated. Run audit verify`,
      );
    throw e;
  }
  let out;
  try {
    out = await evaluateInWorker(job, { weights, sha256: ck.sha256 });
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
  const actor = ctx.actor;
  return transact(
    store,
    function* (tx) {
      const created = (yield* row(
        tx
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
            createdBy: actor.id,
            createdAt: now(),
          })
          .returning(),
      ))!;
      yield* appendEvent({
        actor,
        action: "evaluation.create",
        entityType: "evaluation",
        entityId: created.id,
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
          source: created.source,
          createdAt: created.createdAt,
          metricsSha256: sha256Canonical(out.result),
        },
      });
      return {
        id: created.id,
        runId,
        checkpointId: ck.id,
        epoch: ck.epoch,
        partition: created.partition,
        dataSha256: created.dataSha256,
        backend: out.backend,
        result: out.result,
      };
    },
    { pgLock: PG_LOCK_KEYS.ledger },
  );
}
