/** Runs: launch (new, fork, re-run, fine-tune, compression), read, live metric points, cancel, tags, size estimate, on-demand evaluation. */
import { z } from "zod";
import { router, signedInProcedure, engineerProcedure, roleProcedure } from "@/server/trpc/init";
import { annotateInput, annotateRun } from "@/server/runs/annotate";
import {
  cancelRun,
  cancelRunInput,
  resumeInterruptedRun,
  createRunInput,
  launchRun,
  addRunTag,
  removeRunTag,
  requestPilotInterventionOn,
  tagInput,
} from "@/server/runs/service";
import { getRun, listRuns, metricPoints } from "@/server/runs/queries";
import { estimateConfig, refuseUnbuildableConfig } from "@/server/runs/trainer-tasks";
import { EVALUATION_ROLES, evaluateCheckpointInput, evaluateRunCheckpoint } from "@/server/runs/evaluations";
import { cancelInterventionInput, cancelInterventionOn, requestInterventionInput } from "@/server/runs/pilot";
import { listInterventionsWithEffectsOn } from "@/server/runs/pilot-effects";
import { createRerunInput, launchRerun } from "@/server/runs/replay";
import { compressionResult, compressRunInput, launchCompression } from "@/server/runs/compression";
import { runHolderOn } from "@/server/runs/orchestrator/leases";

/** Live piloting: requests are queued and take effect at the run's next epoch boundary (server/runs/pilot.ts). */
const pilotRouter = router({
  request: engineerProcedure
    .input(requestInterventionInput)
    .mutation(({ ctx, input }) => requestPilotInterventionOn(ctx.services, ctx.services.orchestrator, input)),
  cancel: engineerProcedure.input(cancelInterventionInput).mutation(({ ctx, input }) => cancelInterventionOn(ctx.services, input)),
  /** Oldest first; an applied one carries its effect on the watched metric over the following epochs. */
  list: signedInProcedure
    .input(z.object({ runId: z.number().int() }))
    .query(({ ctx, input }) => listInterventionsWithEffectsOn(ctx.services.db, input.runId)),
});

const runId = z.object({ id: z.number().int() });

export const runsRouter = router({
  list: signedInProcedure
    .input(z.object({ experimentId: z.number().int() }))
    .query(({ ctx, input }) => listRuns(ctx.services.db, input.experimentId)),
  get: signedInProcedure.input(runId).query(({ ctx, input }) => getRun(ctx.services.db, input.id)),
  /** Which process holds the run now: a training worker (host, pid), another process, or the workers' queue (leases.ts). */
  holder: signedInProcedure.input(runId).query(({ ctx, input }) => runHolderOn(ctx.services.db, input.id)),
  metrics: signedInProcedure
    .input(z.object({ runId: z.number().int(), keys: z.array(z.string()).optional(), afterStep: z.number().int().optional() }))
    .query(({ ctx, input }) => metricPoints(ctx.services.db, input.runId, input)),
  /**
   * Launches a new run, fork or fine-tune. Its model is first built for its dataset in the estimate worker: a config
   * that cannot be built (an image fed into dense layers without a flatten) is refused with the builder's reason
   * before anything is recorded, instead of launching and failing in training.
   */
  create: engineerProcedure.input(createRunInput).mutation(async ({ ctx, input }) => {
    await refuseUnbuildableConfig(ctx.services, input.config);
    return launchRun(ctx.services, ctx.services.orchestrator, input);
  }),
  /** Re-runs a finished run replaying its planned and piloted changes at their epochs (server/runs/replay.ts). */
  rerun: engineerProcedure
    .input(createRerunInput)
    .mutation(({ ctx, input }) => launchRerun(ctx.services, ctx.services.orchestrator, input)),
  /**
   * Compresses a run's checkpoint (float16 / int8 quantization, magnitude pruning, distillation into a student): a new
   * run (origin "compress") that the trainer works in a worker (server/runs/compression.ts).
   */
  compress: engineerProcedure
    .input(compressRunInput)
    .mutation(({ ctx, input }) => launchCompression(ctx.services, ctx.services.orchestrator, input)),
  /** A compression run's size and metrics against its source checkpoint's. */
  compression: signedInProcedure.input(runId).query(({ ctx, input }) => compressionResult(ctx.services.db, input.id)),
  cancel: engineerProcedure
    .input(cancelRunInput)
    .mutation(({ ctx, input }) => cancelRun(ctx.services, ctx.services.orchestrator, input.id, input.reason)),
  /** Resumes an interrupted run (its training process died) from its last checkpoint. */
  resumeInterrupted: engineerProcedure
    .input(runId)
    .mutation(({ ctx, input }) => resumeInterruptedRun(ctx.services, ctx.services.orchestrator, input.id)),
  /** Renames or describes a run after launch (any engineer; one run.annotate event per changed field; config untouched). */
  annotate: engineerProcedure.input(annotateInput).mutation(({ ctx, input }) => annotateRun(ctx.services, input)),
  addTag: engineerProcedure.input(tagInput).mutation(({ ctx, input }) => addRunTag(ctx.services, input)),
  removeTag: engineerProcedure.input(tagInput).mutation(({ ctx, input }) => removeRunTag(ctx.services, input)),
  /** Parameter count and memory estimate (training vs inference; float32, bfloat16, int8) of a config, before it runs. */
  estimate: signedInProcedure
    .input(z.object({ config: z.unknown() }))
    .query(({ ctx, input }) => estimateConfig(ctx.services, input.config)),
  /** Evaluates a checkpoint on the test partition of the run's split and records it. */
  evaluate: roleProcedure(...EVALUATION_ROLES)
    .input(evaluateCheckpointInput)
    .mutation(({ ctx, input }) => evaluateRunCheckpoint(ctx.services, input)),
  pilot: pilotRouter,
});
