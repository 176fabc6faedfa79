/**
 * `sweep --config FILE [--data-dir DIR] [--experiment NAME] [--user EMAIL] [--backend B] [--json]`: creates a sweep from
 * a spec file (contracts/sweep-spec.ts; its `base` may also be a path to a training config file, relative to the spec)
 * and runs it to its budget in this process, with the same services, orchestrator queue and database as the web app.
 * With --json, stdout carries exactly one JSON object:
 * {sweepId, status, specSha256, trials: [{runId, trialIndex, status, params, config, metrics, value, stoppedAtRung}],
 *  best: {runId, metric, value} | null}; `config` is the trial's full training config, `params` the values the sweep
 * generated, `metrics` the last value of each epoch metric, `value` the trial's objective (best epoch value).
 */
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { eq } from "drizzle-orm";
import { runs, metricSummaries } from "@/db/schema";
import { createAppServices } from "@/server/app-context/app-services";
import { DEMO_USERS } from "@/server/demo/seed";
import type { BackendName } from "@/trainer/types";
import { createSweep } from "@/server/sweeps/service";
import { driveSweep } from "@/server/sweeps/driver";
import { getSweep } from "@/server/sweeps/queries";
import { DomainError } from "@/server/errors";
import { checkpointAfterCliWrite } from "./checkpoint-after-write";
import { cliUserAndExperiment } from "./cli-experiment";

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
  const services = createAppServices(values["data-dir"], { backend: values.backend as BackendName | "auto", keyDir: values["key-dir"] });
  const { db } = services;
  try {
    const found = await cliUserAndExperiment(services, "sweep", values.user, values.experiment);
    if (!found) return 2;
    const { ctx, experiment } = found;
    let sweep;
    try {
      sweep = await createSweep(ctx, { experimentId: experiment.id, spec });
    } catch (e) {
      if (e instanceof DomainError) {
        process.stderr.write(`sweep: ${e.message}\n`);
        return 2;
      }
      throw e;
    }
    log(`sweep ${sweep.id} (${sweep.name}): ${sweep.method}, up to ${sweep.maxTrials} trials; spec sha256 ${sweep.specSha256}`);
    let seen = 0;
    const progress = setInterval(() => {
      const s = getSweep(db, sweep.id);
      for (const t of s.trials.slice(seen)) log(`  trial ${t.trialIndex + 1}: run ${t.runId} ${JSON.stringify(t.params)}`);
      seen = s.trials.length;
    }, 1000);
    try {
      await driveSweep(services, services.orchestrator, sweep.id);
    } finally {
      clearInterval(progress);
    }
    const done = getSweep(db, sweep.id);
    const trials = done.trials.map((t) => ({
      runId: t.runId,
      trialIndex: t.trialIndex,
      status: t.status,
      params: t.params,
      config: JSON.parse(db.select({ c: runs.configJson }).from(runs).where(eq(runs.id, t.runId)).get()!.c) as unknown,
      metrics: Object.fromEntries(
        db
          .select()
          .from(metricSummaries)
          .where(eq(metricSummaries.runId, t.runId))
          .all()
          .filter((m) => !m.key.startsWith("batch_"))
          .map((m) => [m.key, m.last]),
      ),
      value: t.value,
      stoppedAtRung: t.stoppedAtRung,
    }));
    const out = { sweepId: done.id, status: done.status, specSha256: done.specSha256, trials, best: done.best };
    if (values.json) process.stdout.write(`${JSON.stringify(out)}\n`);
    else {
      for (const t of trials)
        log(
          `trial ${t.trialIndex + 1} run ${t.runId}: ${t.status}${t.stoppedAtRung !== null ? ` (stopped early at epoch ${t.stoppedAtRung})` : ""} ${done.spec.metric.name}=${t.value ?? "-"}`,
        );
      log(done.best ? `best: run ${done.best.runId}, ${done.best.metric} ${done.best.value}` : "best: none (no completed trial)");
    }
    checkpointAfterCliWrite(db, { dataDir: services.dataDir, auditKeys: services.auditKeys });
    return done.best ? 0 : 1;
  } finally {
    services.db.$client.close();
  }
}
