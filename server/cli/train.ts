/**
 * `train --config FILE [--data-dir DIR] [--experiment NAME] [--user EMAIL] [--backend B] [--json]`:
 * trains a config file to completion with the same services, trainer and database as the web app.
 * With --json, stdout carries exactly one JSON object: {runId, status, backend, configSha256, weightsSha256, checkpoints, metrics}.
 */
import fs from "node:fs";
import { parseArgs } from "node:util";
import { and, eq } from "drizzle-orm";
import { users, experiments, runs, checkpoints, metricSummaries, evaluations } from "@/db/schema";
import { createAppServices } from "@/server/app-services";
import { ensureDemoUsersAndProject, DEMO_USERS } from "@/server/seed";
import { createRun } from "@/server/services/runs";
import { createExperiment } from "@/server/services/projects";
import { actorOf } from "@/server/services/users";
import type { BackendName } from "@/trainer/types";

export async function trainCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { config: { type: "string" }, "data-dir": { type: "string" }, experiment: { type: "string", default: "cli" }, user: { type: "string", default: DEMO_USERS[1]!.email }, backend: { type: "string", default: "auto" }, rationale: { type: "string" }, json: { type: "boolean", default: false } },
  });
  if (!values.config) {
    process.stderr.write("train: --config FILE is required\n");
    return 2;
  }
  let configInput: unknown;
  try {
    configInput = JSON.parse(fs.readFileSync(values.config, "utf8"));
  } catch (e) {
    process.stderr.write(`train: cannot read ${values.config}: ${(e as Error).message}\n`);
    return 2;
  }
  const log = (s: string) => (values.json ? process.stderr : process.stdout).write(`${s}\n`);
  const services = createAppServices(values["data-dir"], { backend: values.backend as BackendName | "auto" });
  const { db } = services;
  const seed = ensureDemoUsersAndProject(services);
  const user = db.select().from(users).where(eq(users.email, values.user.toLowerCase())).get();
  if (!user) {
    process.stderr.write(`train: no user with email ${values.user}\n`);
    return 2;
  }
  const ctx = { ...services, actor: actorOf(user) };
  const project = db.select().from(experiments).where(eq(experiments.id, seed.experimentId)).get()!.projectId;
  const experiment = db.select().from(experiments).where(and(eq(experiments.projectId, project), eq(experiments.name, values.experiment))).get() ?? createExperiment(ctx, { projectId: project, name: values.experiment, description: "Runs launched from the command line." });

  const run = createRun(ctx, { experimentId: experiment.id, config: configInput, rationale: values.rationale ?? `trained from ${values.config} on the command line` });
  log(`run ${run.id} (${run.name}) queued`);
  services.orchestrator.launch(run.id);
  await services.orchestrator.waitFor(run.id);

  const done = db.select().from(runs).where(eq(runs.id, run.id)).get()!;
  const cks = db.select().from(checkpoints).where(eq(checkpoints.runId, run.id)).orderBy(checkpoints.epoch).all();
  const finalMetrics = Object.fromEntries(db.select().from(metricSummaries).where(eq(metricSummaries.runId, run.id)).all().filter((s) => !s.key.startsWith("batch_")).map((s) => [s.key, s.last]));
  const evaluation = db.select().from(evaluations).where(eq(evaluations.runId, run.id)).get();
  const result = {
    runId: done.id,
    status: done.status,
    backend: done.backend,
    backendReason: done.backendReason,
    configSha256: done.configSha256,
    weightsSha256: done.finalWeightsSha256,
    checkpoints: cks.map((c) => ({ epoch: c.epoch, sha256: c.sha256, best: c.isBest })),
    metrics: finalMetrics,
    test: evaluation ? (JSON.parse(evaluation.metricsJson) as unknown) : null,
    error: done.error,
  };
  if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else {
    log(`run ${done.id}: ${done.status} on ${done.backend ?? "?"}${done.error ? ` — ${done.error}` : ""}`);
    for (const [k, v] of Object.entries(finalMetrics)) log(`  ${k}: ${v.toFixed(4)}`);
    log(`  weights sha256: ${done.finalWeightsSha256 ?? "-"}`);
  }
  services.db.$client.close();
  return done.status === "completed" ? 0 : 1;
}
