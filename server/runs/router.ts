/** Runs: launch (new, fork, re-run, fine-tune), read, live metric points, cancel, tags, size estimate, on-demand evaluation. */
import { z } from "zod";
import { eq } from "drizzle-orm";
import { TRPCError } from "@trpc/server";
import { router, signedInProcedure, engineerProcedure, roleProcedure } from "@/server/trpc/init";
import { createRun, createRunInput, addRunTag, removeRunTag, tagInput } from "@/server/runs/service";
import { getRun, listRuns, metricPoints } from "@/server/runs/queries";
import { runs } from "@/db/schema";
import { appendAuditEvent } from "@/server/audit/ledger";
import { estimateConfig } from "@/server/runs/trainer-tasks";
import { EVALUATION_ROLES, evaluateCheckpointInput, evaluateRunCheckpoint } from "@/server/runs/evaluations";

const runId = z.object({ id: z.number().int() });

export const runsRouter = router({
  list: signedInProcedure.input(z.object({ experimentId: z.number().int() })).query(({ ctx, input }) => listRuns(ctx.services.db, input.experimentId)),
  get: signedInProcedure.input(runId).query(({ ctx, input }) => getRun(ctx.services.db, input.id)),
  metrics: signedInProcedure
    .input(z.object({ runId: z.number().int(), keys: z.array(z.string()).optional(), afterStep: z.number().int().optional() }))
    .query(({ ctx, input }) => metricPoints(ctx.services.db, input.runId, input)),
  create: engineerProcedure.input(createRunInput).mutation(({ ctx, input }) => {
    const run = createRun(ctx.service, input);
    ctx.services.orchestrator.launch(run.id);
    return { id: run.id, name: run.name };
  }),
  cancel: engineerProcedure.input(runId).mutation(({ ctx, input }) => {
    const { db } = ctx.services;
    const run = db.select({ status: runs.status }).from(runs).where(eq(runs.id, input.id)).get();
    if (!run) throw new TRPCError({ code: "NOT_FOUND", message: `run ${input.id} was not found` });
    if (run.status !== "queued" && run.status !== "running") throw new TRPCError({ code: "BAD_REQUEST", message: `run ${input.id} is ${run.status}; only a queued or running run can be cancelled` });
    db.transaction((tx) => appendAuditEvent(tx, { actor: ctx.user, action: "run.cancelRequest", entityType: "run", entityId: input.id, payload: { statusAtRequest: run.status } }));
    if (!ctx.services.orchestrator.cancel(input.id)) throw new TRPCError({ code: "CONFLICT", message: `run ${input.id} is not training in this server process` });
    return { ok: true };
  }),
  addTag: engineerProcedure.input(tagInput).mutation(({ ctx, input }) => addRunTag(ctx.service, input)),
  removeTag: engineerProcedure.input(tagInput).mutation(({ ctx, input }) => removeRunTag(ctx.service, input)),
  /** Parameter count and memory estimate (training vs inference; float32, bfloat16, int8) of a config, before it runs. */
  estimate: signedInProcedure.input(z.object({ config: z.unknown() })).query(({ ctx, input }) => estimateConfig(ctx.service, input.config)),
  /** Evaluates a checkpoint on the test partition of the run's split and records it. */
  evaluate: roleProcedure(...EVALUATION_ROLES).input(evaluateCheckpointInput).mutation(({ ctx, input }) => evaluateRunCheckpoint(ctx.service, input)),
});
