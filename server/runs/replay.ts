/**
 * Replaying a piloting path, and applying a pending intervention at a boundary (a rollback creates its branch).
 *
 * - createRerun: a re-run of a run (lineage: origin "rerun", parent the source run) whose config is the source's
 *   config with its piloting path made explicit as `schedule` entries: the source's own planned entries, then each
 *   applied live change (set: its new values; stop; a rollback that stopped the run: stop) at the epoch where it
 *   took effect, citing the intervention it replays (`replays`, and in its rationale). The trainer applies them as
 *   planned controls at those boundaries, so on the same backend the re-run ends with the source's weights hash.
 *   Pauses and resumes are not replayed: a resume continues exactly (trainer/resume-state.ts), so they change no
 *   weights. Each entry becomes a "planned" decision of the re-run (createRun), so its timeline is true.
 * - applyPendingAtBoundaryOn: the orchestrator's one call to make a pending intervention take effect, on either
 *   store; a rollback creates its branch (pilot.ts applyRollbackOn with the service's branchRunOnStore) and returns
 *   the branch's id.
 * - How a branch trains (from its parent checkpoint's exact-resume state) is branch-job.ts's branchJobOfOn.
 * - On the store (issue 16): createRerunOn and launchRerun (the router's), applyPendingAtBoundaryOn; replaySchedule
 *   is one read part (replayScheduleIn). createRerun stays for SQLite's synchronous callers (tests).
 *
 * Invariants: createRerun writes through createRun only, createRerunOn through createRunOnStore (one transaction with
 * run.create and the decisions); nothing here writes resume states or reads the ledger.
 */
import { asc, eq } from "drizzle-orm";
import { z } from "zod";
import type { Db, DbOrTx, Tx } from "@/db/client";
import * as sqliteTables from "@/db/schema";
import { asStore, reader, readPart, row, rows, runOnSqliteTx, type Store, type StoreTables, type TxBody } from "@/db/store";
import type { AnyArtifactStore } from "@/server/artifacts/async-store";
import { trainingConfigSchema, type ScheduleEntry, type TrainingConfig } from "@/contracts/training-config";
import { requireRole, type ServiceContext, type SignedInActor } from "../app-context/service-context";
import { invalidInput, notFound, wrongState } from "@/server/errors";
import { branchRunOnStore, createRun, createRunOnStore, type CreateRunInput } from "./service";
import { applyInterventionOn, applyRollbackOn } from "./pilot";
import { parseChanges } from "./pilot-queries";
import { refuseUnbuildableConfig } from "./trainer-tasks";

/** A re-run replays a finished piloting path: the source must have ended. */
export const RERUNNABLE = ["completed", "failed", "cancelled"] as const;

export const createRerunInput = z.object({
  runId: z.number().int(),
  rationale: z.string().trim().min(1, "a rationale is required: say why you re-run this run").max(4000).optional(),
});

/** The source's piloting path as schedule entries: its planned entries, then its applied live changes, by epoch. */
export function replaySchedule(db: DbOrTx, runId: number, config: TrainingConfig): ScheduleEntry[] {
  return runOnSqliteTx(db as Tx, replayScheduleIn(db as Tx, sqliteTables, runId, config));
}

/** replaySchedule as a part of a transaction body, or a read (db/store.ts), on either store. */
export function* replayScheduleIn(q: Tx, t: StoreTables, runId: number, config: TrainingConfig): TxBody<ScheduleEntry[]> {
  const ri = t.runInterventions;
  const planned = (config.schedule ?? []).map((e, i) => ({ entry: e, order: 0, i }));
  // Only applied rows (appliedAtStep set) are kept: the stores sort NULLs differently, not the rows that stay.
  const applied = (yield* rows(q.select().from(ri).where(eq(ri.runId, runId)).orderBy(asc(ri.appliedAtStep), asc(ri.id)))).filter(
    (r) => r.status === "applied" && r.appliedAtEpoch !== null,
  );
  const live: { entry: ScheduleEntry; order: number; i: number }[] = [];
  for (const [i, r] of applied.entries()) {
    const cite = `replays intervention #${r.id} of run #${runId} (${r.kind} at epoch ${r.appliedAtEpoch}): ${r.rationale}`;
    const replays = { runId, interventionId: r.id };
    const changes = parseChanges(r.changesJson);
    const set = Object.fromEntries(changes.map((c) => [c.path, c.newValue]));
    let entry: ScheduleEntry | null = null;
    if (r.kind === "set") entry = { atEpoch: r.appliedAtEpoch!, set, rationale: cite, replays };
    else if (r.kind === "stop") entry = { atEpoch: r.appliedAtEpoch!, stop: true, rationale: cite, replays };
    else if (r.kind === "rollback") {
      // A rollback of a training run stopped it at that boundary (its decision's path says so); its changes went to the branch.
      const stopped = r.decisionId !== null && r.checkpointId !== r.fromCheckpointId;
      if (stopped) entry = { atEpoch: r.appliedAtEpoch!, stop: true, rationale: cite, replays };
    }
    // pause / resume: no effect on the weights (an exact resume), nothing to replay.
    if (entry && entry.atEpoch > 0) live.push({ entry, order: 1, i });
  }
  return [...planned, ...live].sort((a, b) => a.entry.atEpoch - b.entry.atEpoch || a.order - b.order || a.i - b.i).map((x) => x.entry);
}

/**
 * The re-run of a finished run as the runs service is asked to create it (its config with the source's piloting path
 * replayed as schedule entries), after the role and the source's checks: a read part, on either store.
 */
function* rerunRequestIn(q: Tx, t: StoreTables, actor: SignedInActor, raw: z.input<typeof createRerunInput>): TxBody<CreateRunInput> {
  requireRole(actor, ["engineer"], "launch runs");
  const input = createRerunInput.parse(raw);
  const source = yield* row(q.select().from(t.runs).where(eq(t.runs.id, input.runId)));
  if (!source) notFound(`run ${input.runId}`);
  if (source.origin === "api") invalidInput(`run ${source.id} was logged through the tracking API: it has no training config to re-run`);
  if (!(RERUNNABLE as readonly string[]).includes(source.status))
    wrongState(
      `run ${source.id} is ${source.status}: only a ${RERUNNABLE.join(", ")} run can be re-run (its piloting path must be complete)`,
    );
  if (source.origin === "branch")
    invalidInput(
      `run ${source.id} is a branch: it continues checkpoint ${source.parentCheckpointId} of run ${source.parentRunId}; to repeat it, roll run ${source.parentRunId} back to that checkpoint again with the same changes`,
    );
  const config = trainingConfigSchema.parse(JSON.parse(source.configJson));
  const schedule = yield* replayScheduleIn(q, t, source.id, config);
  const { schedule: _old, ...rest } = config;
  void _old;
  const rerunConfig: TrainingConfig = schedule.length > 0 ? { ...rest, schedule } : rest;
  return {
    experimentId: source.experimentId,
    name: `re-run of ${source.name}`.slice(0, 120),
    config: rerunConfig,
    rationale: input.rationale ?? `re-run of run #${source.id}, replaying its ${schedule.length} planned/piloted change(s)`,
    origin: "rerun",
    parentRunId: source.id,
  };
}

/** Creates the re-run of a finished run (replaying its piloting path) on SQLite; the caller launches it. */
export function createRerun(ctx: ServiceContext, raw: z.input<typeof createRerunInput>) {
  return createRun(ctx, runOnSqliteTx(ctx.db as unknown as Tx, rerunRequestIn(ctx.db as unknown as Tx, sqliteTables, ctx.actor, raw)));
}

/**
 * createRerun on either store (db/store.ts): the same checks, then createRunOnStore (its rows and run.create). A source
 * whose model cannot be built (a sweep trial that failed so) is refused before anything is recorded, as runs.create.
 */
export async function createRerunOn(
  ctx: Parameters<typeof createRunOnStore>[0] & { dataDir: string },
  raw: z.input<typeof createRerunInput>,
) {
  const store = asStore(ctx.db);
  const request = await readPart(store, (q) => rerunRequestIn(q, store.tables, ctx.actor, raw));
  await refuseUnbuildableConfig(ctx, request.config);
  return createRunOnStore(ctx, request);
}

/** Creates the re-run (createRerunOn) and hands it to the orchestrator, which queues or starts it. */
export async function launchRerun(
  ctx: Parameters<typeof createRerunOn>[0],
  orchestrator: { launch(runId: number): boolean | Promise<boolean> },
  raw: z.input<typeof createRerunInput>,
): Promise<{ id: number; name: string }> {
  const run = await createRerunOn(ctx, raw);
  await orchestrator.launch(run.id);
  return { id: run.id, name: run.name };
}

/**
 * Makes a pending intervention take effect at a boundary (the orchestrator's call), on either store (db/store.ts): a
 * rollback creates its branch (pilot.ts applyRollbackOn, the branch by the runs service's branchRunOnStore) and returns
 * the branch's run id (to launch); any other kind is applyInterventionOn. Under the ledger lock on PostgreSQL.
 */
export async function applyPendingAtBoundaryOn(
  deps: { db: Store | Db; artifacts: AnyArtifactStore },
  input: { interventionId: number; epoch: number; step: number; checkpointId: number },
): Promise<number | null> {
  const store = asStore(deps.db);
  const ri = store.tables.runInterventions;
  const [row] = await reader(store).select({ kind: ri.kind }).from(ri).where(eq(ri.id, input.interventionId)).limit(1);
  if (row?.kind === "rollback") return (await applyRollbackOn(deps, input, branchRunOnStore)).branchRunId;
  await applyInterventionOn(deps, input);
  return null;
}
