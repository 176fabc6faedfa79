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
 * The driver polls the database (a few light reads every `pollMs`), never trains on its own thread, and holds no
 * state the database does not have: a new driver (another process, a restart) picks a running sweep up where it is.
 *
 * Stores (issue 16): the driver runs on the SQLite handle, because the orchestrator it hands trials to (launch,
 * cancel) is not on the store yet, nor are its polling reads (queries.ts listSweepTrials, metricAtEpoch). Its
 * decisions are store-generic and awaited: createTrialRun, recordTrialStop and completeSweep (service.ts) run on
 * SQLite or PostgreSQL, each one transaction that re-checks the sweep (under the ledger lock on PostgreSQL). Porting
 * the driver takes the orchestrator's port and those reads; nothing else here is dialect-bound.
 */
import { eq } from "drizzle-orm";
import { sweeps } from "@/db/schema";
import { ashaContinues, suggestTrial, type SweepSpec, type TrialObservation } from "@/contracts/sweep-spec";
import type { ServiceDeps } from "@/server/app-context/service-context";
import { DomainError } from "@/server/errors";
import { FINAL_RUN_STATUSES, listSweepTrials, metricAtEpoch } from "./queries";
import { completeSweep, createTrialRun, recordTrialStop } from "./service";

export type SweepOrchestrator = { launch(runId: number): Promise<boolean>; cancel(runId: number): Promise<boolean> };

const drivers = new WeakMap<object, Map<number, Promise<void>>>();

/** Starts driving a sweep in the background (once per sweep and process); resolves when it completes, stops or pauses. */
export function driveSweep(
  deps: ServiceDeps,
  orchestrator: SweepOrchestrator,
  sweepId: number,
  opts: { pollMs?: number } = {},
): Promise<void> {
  let m = drivers.get(deps.db);
  if (!m) drivers.set(deps.db, (m = new Map()));
  const running = m.get(sweepId);
  if (running) return running;
  const p = runSweep(deps, orchestrator, sweepId, opts).finally(() => m.delete(sweepId));
  m.set(sweepId, p);
  return p;
}

async function runSweep(deps: ServiceDeps, orchestrator: SweepOrchestrator, sweepId: number, opts: { pollMs?: number }): Promise<void> {
  const pollMs = opts.pollMs ?? 150;
  const judged = new Set<string>();
  for (;;) {
    if (!deps.db.$client.open) return;
    const s = deps.db.select().from(sweeps).where(eq(sweeps.id, sweepId)).get();
    if (!s) return;
    const spec = JSON.parse(s.specJson) as SweepSpec;
    const trials = listSweepTrials(deps.db, sweepId, spec);
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
          const v = metricAtEpoch(deps.db, t.runId, spec.metric.name, rung);
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
            await recordTrialStop(deps, {
              sweepId,
              runId: t.runId,
              rung,
              value,
              threshold: verdict.threshold,
              eta: et.eta,
              atRung: atRung.size,
            })
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
          const run = await createTrialRun(deps, sweepId, index, suggestTrial(spec, index, history));
          await orchestrator.launch(run.id);
        } catch (err) {
          if (!(err instanceof DomainError)) throw err;
          // Paused, stopped or extended meanwhile (the transaction re-checked): look again after a pause. Any other
          // refusal (the engineer who set the sweep up may no longer launch runs) ends this driver, loudly.
          if (err.kind !== "conflict") throw err;
          await new Promise((r) => setTimeout(r, pollMs));
        }
        continue;
      }
    }
    if (active.length === 0) {
      if (s.status === "paused") return;
      if (trials.length >= s.maxTrials) {
        await completeSweep(deps, sweepId);
        return;
      }
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
