/**
 * `sweep --config FILE [--data-dir DIR] [--experiment NAME] [--user EMAIL] [--backend B] [--json]`: creates a sweep from
 * a spec file (contracts/sweep-spec.ts; its `base` may also be a path to a training config file, relative to the spec)
 * and runs it to its budget in this process, with the same services, orchestrator queue and database as the web app.
 * With --json, stdout carries exactly one JSON object:
 * {sweepId, status, specSha256, trials: [{runId, trialIndex, status, params, config, metrics, value, stoppedAtRung}],
 *  best: {runId, metric, value} | null}; `config` is the trial's full training config, `params` the values the sweep
 * generated, `metrics` the last value of each epoch metric (by name), `value` the trial's objective (best epoch value).
 *
 * Stores (issue 16): with DATABASE_URL=postgres://… the sweep, its trials and their ledger events are in the PostgreSQL
 * store and the trials train in this process (cli-train-store.ts), the same JSON; no audit checkpoint is signed there
 * (the web servers' timer signs it). --data-dir and --key-dir are refused there (exit 2).
 */
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { asc, eq } from "drizzle-orm";
import { reader, type Store } from "@/db/store";
import { DEMO_USERS } from "@/server/demo/seed";
import type { BackendName } from "@/trainer/types";
import { createSweep } from "@/server/sweeps/service";
import { driveSweep } from "@/server/sweeps/driver";
import { sweepOnStore } from "@/server/sweeps/queries";
import { DomainError } from "@/server/errors";
import { cliUserAndExperimentOn } from "./cli-experiment";
import { openTrainStoreFor } from "./cli-train-store";
import { refuseUnbuildableSweep } from "@/server/sweeps/buildable";

/** A trial's full training config and the last value of each of its epoch metrics (batch metrics left out). */
async function trialConfigAndMetrics(store: Store, runId: number) {
  const { runs, metricSummaries } = store.tables;
  const [run] = await reader(store).select({ c: runs.configJson }).from(runs).where(eq(runs.id, runId)).limit(1);
  const summaries = await reader(store)
    .select({ key: metricSummaries.key, last: metricSummaries.last })
    .from(metricSummaries)
    .where(eq(metricSummaries.runId, runId))
    .orderBy(asc(metricSummaries.key));
  return {
    config: JSON.parse(run!.c) as unknown,
    metrics: Object.fromEntries(summaries.filter((m) => !m.key.startsWith("batch_")).map((m) => [m.key, m.last])),
  };
}

export async function sweepCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: "string" },
      "data-dir": { type: "string" },
      "key-dir": { type: "string" },
      experiment: { type: "string", default: "cli" },
      user: { type: "string", default: DEMO_USERS[1]!.email },
      backend: { type: "string", default: "auto" },
      json: { type: "boolean", default: false },
    },
  });
  if (!values.config) {
    process.stderr.write("sweep: --config FILE is required\n");
    return 2;
  }
  let spec: Record<string, unknown>;
  try {
    spec = JSON.parse(fs.readFileSync(values.config, "utf8")) as Record<string, unknown>;
    if (typeof spec.base === "string")
      spec.base = JSON.parse(fs.readFileSync(path.resolve(path.dirname(values.config), spec.base), "utf8"));
  } catch (e) {
    process.stderr.write(`sweep: cannot read ${values.config}: ${(e as Error).message}\n`);
    return 2;
  }
  const log = (s: string) => (values.json ? process.stderr : process.stdout).write(`${s}\n`);
  const on = await openTrainStoreFor("sweep", {
    dataDir: values["data-dir"],
    keyDir: values["key-dir"],
    backend: values.backend as BackendName | "auto",
    enqueue: false,
  });
  if (!on) return 2;
  const { store } = on;
  try {
    const found = await cliUserAndExperimentOn(store, await on.seedDemo(), "sweep", values.user, values.experiment);
    if (!found) return 2;
    const { actor, experiment } = found;
    let sweep;
    try {
      await refuseUnbuildableSweep({ db: store, actor, artifacts: on.artifacts, dataDir: on.orchestrator.deps.dataDir }, { spec });
      sweep = await createSweep({ db: store, actor }, { experimentId: experiment.id, spec });
    } catch (e) {
      if (e instanceof DomainError) {
        process.stderr.write(`sweep: ${e.message}\n`);
        return 2;
      }
      throw e;
    }
    log(`sweep ${sweep.id} (${sweep.name}): ${sweep.method}, up to ${sweep.maxTrials} trials; spec sha256 ${sweep.specSha256}`);
    let seen = 0;
    const printNewTrials = async () => {
      const s = await sweepOnStore(store, sweep.id);
      for (const t of s.trials.slice(seen)) log(`  trial ${t.trialIndex + 1}: run ${t.runId} ${JSON.stringify(t.params)}`);
      seen = s.trials.length;
    };
    // One progress read at a time; the last one is awaited before the store closes.
    let reading: Promise<void> | null = null;
    const progress = setInterval(() => {
      reading ??= printNewTrials()
        .catch((e: Error) => void process.stderr.write(`sweep: progress: ${e.message}\n`))
        .finally(() => (reading = null));
    }, 1000);
    try {
      await driveSweep({ db: store, artifacts: on.artifacts }, on.orchestrator, sweep.id);
    } finally {
      clearInterval(progress);
      await reading;
    }
    const done = await sweepOnStore(store, sweep.id);
    const trials = [];
    for (const t of done.trials)
      trials.push({
        runId: t.runId,
        trialIndex: t.trialIndex,
        status: t.status,
        params: t.params,
        ...(await trialConfigAndMetrics(store, t.runId)),
        value: t.value,
        stoppedAtRung: t.stoppedAtRung,
      });
    const out = { sweepId: done.id, status: done.status, specSha256: done.specSha256, trials, best: done.best };
    if (values.json) process.stdout.write(`${JSON.stringify(out)}\n`);
    else {
      for (const t of trials)
        log(
          `trial ${t.trialIndex + 1} run ${t.runId}: ${t.status}${t.stoppedAtRung !== null ? ` (stopped early at epoch ${t.stoppedAtRung})` : ""} ${done.spec.metric.name}=${t.value ?? "-"}`,
        );
      log(done.best ? `best: run ${done.best.runId}, ${done.best.metric} ${done.best.value}` : "best: none (no completed trial)");
    }
    on.afterWrite();
    return done.best ? 0 : 1;
  } finally {
    await on.close();
  }
}
