/**
 * The sweep driver: runs a sweep to its budget in this process. It generates trial i (contracts/sweep-spec.ts
 * suggestTrial), creates it (service.ts createTrialRun) and hands it to the same orchestrator queue as every other
 * run; it keeps at most maxParallel trials active; at each ASHA rung it judges the trials that reached it and stops
 * the poor ones (recordTrialStop, then the orchestrator's cancel); when the budget is spent and every trial has
 * ended, the sweep completes (sweep.complete). A paused sweep creates no trials; a stopped one cancels its active
 * trials (the service returned them).
 *
 * Determinism: grid and random trials depend on (spec, index) only. A TPE trial i learns from trials
 * 0 … i − maxParallel exactly (it waits for them to end), so the same spec and seed give the same trials whatever
 * the timing, as long as training itself is deterministic (same config, data, seed and backend).
 *
 * The driver polls the store (a few light reads every `pollMs`), never trains on its own thread, and holds no state
 * the database does not have: a new driver (another process, a restart) picks a running sweep up where it is. Every
 * web server starts one for each running sweep at its start and every 30 s (pick-up.ts).
 *
 * Stores (issue 16): the driver runs on either store, as does the orchestrator it hands trials to. Several drivers
 * may drive one sweep at once (two web servers on PostgreSQL: each one that created, resumed or extended it, or a
 * restart): every decision is one of service.ts's transactions, each re-checking the sweep under the ledger lock on
 * PostgreSQL (SQLite's single writer on SQLite), so each decision is taken once whoever takes it:
 * - trial i exists once: a driver only ever creates trial `trials.length` of what it read, and createTrialRun
 *   refuses an index already taken, a budget spent or a sweep no longer running (a conflict: look again). So
 *   maxParallel holds across drivers too: the trial at index i is created on a read of trials 0 … i − 1, whose active
 *   ones can only have ended since.
 * - a trial is launched by the driver that created it (its orchestrator); a losing driver launches nothing;
 * - an early stop is recorded once (recordTrialStop answers false to the second driver, which then cancels nothing);
 *   the process training the trial stops it at its heartbeat (trialStopAsked), wherever it trains;
 * - the completion is recorded once (completeSweep re-checks that the sweep still runs with its budget spent).
 */
import { and, desc, eq } from "drizzle-orm";
import type { Db } from "@/db/client";
import { asStore, isStoreOpen, readPart, reader, type Store } from "@/db/store";
import { ashaContinues, suggestTrial, type SweepSpec, type TrialObservation } from "@/contracts/sweep-spec";
import type { AnyArtifactStore } from "@/server/artifacts/async-store";
import { DomainError } from "@/server/errors";
import { FINAL_RUN_STATUSES, sweepTrialsIn } from "./queries";
import { completeSweep, createTrialRun, recordTrialStop } from "./service";

export type SweepOrchestrator = { launch(runId: number): Promise<boolean>; cancel(runId: number): Promise<boolean> };

/** What a driver needs: the store, and the artifact store a trial's built-in dataset may be registered in. */
export type SweepDriverDeps = { db: Store | Db; artifacts: AnyArtifactStore };

/**
 * The sweeps this process drives, per database handle (one driver per sweep and process), and the decisions in
 * flight that will start a driver once committed (startsDriver). On globalThis: Next.js bundles this module once for
 * instrumentation.ts (whose services run the pick-up, pick-up.ts) and once per route (the tRPC sweep verbs); a
 * module-level map per copy let the pick-up start a second driver for a sweep a request had just created.
 */
type DriverRegistry = { drivers: WeakMap<object, Map<number, Promise<void>>>; starting: WeakMap<object, Set<Promise<unknown>>> };
const g = globalThis as unknown as { __runledgerSweepDrivers?: DriverRegistry };
const registry = (g.__runledgerSweepDrivers ??= { drivers: new WeakMap(), starting: new WeakMap() });
const drivers = registry.drivers;

/** Starts driving a sweep in the background (once per sweep and process); resolves when it completes, stops or pauses. */
export function driveSweep(
  deps: SweepDriverDeps,
  orchestrator: SweepOrchestrator,
  sweepId: number,
  opts: { pollMs?: number } = {},
): Promise<void> {
  const store = asStore(deps.db);
  // Keyed by the handle: a PostgreSQL Store object is made per caller (pgStore), its pool is the one.
  let m = drivers.get(store.db);
  if (!m) drivers.set(store.db, (m = new Map()));
  const running = m.get(sweepId);
  if (running) return running;
  const p = runSweep(store, deps.artifacts, orchestrator, sweepId, opts).finally(() => m.delete(sweepId));
  m.set(sweepId, p);
  return p;
}

/** Whether this process drives the sweep now (pick-up.ts starts drivers only for the sweeps it does not). */
export function drivenHere(db: Store | Db, sweepId: number): boolean {
  return drivers.get(asStore(db).db)?.has(sweepId) ?? false;
}

/** The sweeps this process drives now on this database handle, in id order. */
export function sweepsDrivenHere(db: Store | Db): number[] {
  return [...(drivers.get(asStore(db).db)?.keys() ?? [])].sort((a, b) => a - b);
}

/**
 * Runs a decision that makes a sweep "running" (create, resume, extend) and then `drive` on its outcome, which starts
 * the driver (synchronously: driveSweep registers before it returns). From before the decision commits until the
 * driver is registered, the decision is "starting" on this handle, so a pick-up that read the sweep as running in
 * between waits for it (driversStarting) and then finds it driven here, never starting a driver of its own.
 */
export async function startsDriver<T>(db: Store | Db, decide: () => Promise<T>, drive: (outcome: T) => void): Promise<T> {
  const key = asStore(db).db;
  let set = registry.starting.get(key);
  if (!set) registry.starting.set(key, (set = new Set()));
  const p = decide().then((outcome) => {
    drive(outcome);
    return outcome;
  });
  const entry = p.catch(() => undefined);
  set.add(entry);
  void entry.finally(() => set.delete(entry));
  return p;
}

/** Resolves once every decision that was starting a driver on this handle when called has started it (or failed). */
export async function driversStarting(db: Store | Db): Promise<void> {
  await Promise.all([...(registry.starting.get(asStore(db).db) ?? [])]);
}

/** The value of `metric` a run reported at the end of epoch `epoch`, if it has (its last step's). */
async function metricAtEpoch(store: Store, runId: number, metric: string, epoch: number): Promise<number | undefined> {
  const { metrics } = store.tables;
  const [found] = await reader(store)
    .select({ value: metrics.value })
    .from(metrics)
    .where(and(eq(metrics.runId, runId), eq(metrics.key, metric), eq(metrics.epoch, epoch)))
    .orderBy(desc(metrics.step))
    .limit(1);
  return found?.value;
}

async function runSweep(
  store: Store,
  artifacts: AnyArtifactStore,
  orchestrator: SweepOrchestrator,
  sweepId: number,
  opts: { pollMs?: number },
): Promise<void> {
  const pollMs = opts.pollMs ?? 150;
  const judged = new Set<string>();
  const { sweeps } = store.tables;
  for (;;) {
    if (!isStoreOpen(store)) return;
    const [s] = await reader(store).select().from(sweeps).where(eq(sweeps.id, sweepId)).limit(1);
    if (!s) return;
    const spec = JSON.parse(s.specJson) as SweepSpec;
    // One statement: the trials and their statuses as of one moment (the budget and maxParallel decisions read it).
    const trials = await readPart(store, (q) => sweepTrialsIn(q, store.tables, sweepId, spec));
    const active = trials.filter((t) => !FINAL_RUN_STATUSES.includes(t.status));
    if (s.status === "stopped") {
      for (const t of active) await orchestrator.cancel(t.runId);
      return;
    }
    if (s.status === "completed") return;

    // ASHA at each rung: judge a trial once it has the metric at the rung epoch, against all trials that reached it.
    const et = spec.earlyTermination;
    if (et) {
      for (const rung of et.rungs) {
        const atRung = new Map<number, number>();
        for (const t of trials) {
          const v = await metricAtEpoch(store, t.runId, spec.metric.name, rung);
          if (v !== undefined) atRung.set(t.runId, v);
        }
        for (const t of active) {
          const key = `${t.runId}:${rung}`;
          const value = atRung.get(t.runId);
          if (value === undefined || judged.has(key) || t.stoppedAtRung !== null) continue;
          judged.add(key);
          const verdict = ashaContinues(value, [...atRung.values()], et.eta, spec.metric.direction);
          if (verdict.continues) continue;
          if (
            await recordTrialStop(
              { db: store },
              { sweepId, runId: t.runId, rung, value, threshold: verdict.threshold, eta: et.eta, atRung: atRung.size },
            )
          )
            await orchestrator.cancel(t.runId);
        }
      }
    }

    if (s.status === "running" && trials.length < s.maxTrials && active.length < spec.budget.maxParallel) {
      const index = trials.length;
      let ready = true;
      let history: TrialObservation[] = [];
      if (spec.method === "tpe") {
        const learnFrom = trials.slice(0, Math.max(0, index - spec.budget.maxParallel + 1));
        ready = learnFrom.every((t) => FINAL_RUN_STATUSES.includes(t.status));
        history = learnFrom.filter((t) => t.value !== null).map((t) => ({ params: t.params, value: t.value! }));
      }
      if (ready) {
        try {
          const run = await createTrialRun({ db: store, artifacts }, sweepId, index, suggestTrial(spec, index, history));
          await orchestrator.launch(run.id);
        } catch (err) {
          if (!(err instanceof DomainError)) throw err;
          // Paused, stopped or extended meanwhile, or this index taken by another driver (the transaction re-checked):
          // look again after a pause. Any other refusal (the engineer who set the sweep up may no longer launch runs)
          // ends this driver, loudly.
          if (err.kind !== "conflict") throw err;
          await new Promise((r) => setTimeout(r, pollMs));
        }
        continue;
      }
    }
    if (active.length === 0) {
      if (s.status === "paused") return;
      if (trials.length >= s.maxTrials) {
        await completeSweep({ db: store }, sweepId);
        return;
      }
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
