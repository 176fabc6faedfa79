/**
 * `train --config FILE [--data-dir DIR] [--experiment NAME] [--user EMAIL] [--backend B] [--json]`:
 * trains a config file to completion with the same services, trainer and database as the web app.
 * With --json, stdout carries exactly one JSON object: {runId, status, backend, configSha256, weightsSha256, checkpoints, metrics}.
 * With --enqueue, the run is queued for the training workers (`npm run worker`, server/runs/orchestrator/run-queue.ts)
 * instead of training here; the command waits until it has ended (whichever worker trains it, also across a worker's
 * death or a pause and its resume: completed, failed or cancelled) and prints the same result. The backend is then the worker's choice (--backend is refused).
 * While no worker has taken the run it says so once on stderr after 5 s, with how to start one (queue-wait.ts); with
 * --wait-timeout SECONDS it gives up once the run has waited that long in the queue: the run stays queued, untouched,
 * stderr says so with its id, stdout (with --json) carries its current result (status "queued"), and the exit code is 3.
 * Likewise for a fine-tune's parent config queued first (then the fine-tune run is not created).
 */
import fs from "node:fs";
import { parseArgs } from "node:util";
import { and, eq } from "drizzle-orm";
import { runs, checkpoints } from "@/db/schema";
import { createAppServices } from "@/server/app-context/app-services";
import { DEMO_USERS } from "@/server/demo/seed";
import { createRun } from "@/server/runs/service";
import type { BackendName } from "@/trainer/types";
import { parseConfigOrThrow } from "@/server/runs/service";
import { sha256Canonical } from "@/contracts/canonical";
import type { AppServices } from "@/server/app-context/app-services";
import type { ServiceContext } from "@/server/app-context/service-context";
import path from "node:path";
import { checkpointAfterCliWrite } from "./checkpoint-after-write";
import { cliUserAndExperiment } from "./cli-experiment";
import { printRunResult, runResult } from "./run-result";
import { waitForQueuedRun } from "./queue-wait";

/**
 * A config file may name its fine-tuning parent as "config:FILE@best|@last|@epochN" instead of a checkpoint id:
 * the parent config is trained first in the same data directory (or an earlier completed run of exactly that
 * config is reused), and the reference is replaced by that checkpoint's id before the run is created.
 */
const PARENT_REF = /^config:(.+?)(?:@(best|last|epoch\d+))?$/;

async function resolveParentReference(
  services: AppServices,
  ctx: ServiceContext,
  experimentId: number,
  configInput: unknown,
  baseDir: string,
  log: (s: string) => void,
  /** Waits for a run's end; false: it is still queued for the workers after --wait-timeout. */
  waitForEnd: (runId: number) => Promise<boolean>,
): Promise<{ config: unknown } | { queuedParent: number; file: string }> {
  const ft = (configInput as { fineTune?: { parentCheckpointId?: unknown } }).fineTune;
  const ref = typeof ft?.parentCheckpointId === "string" ? PARENT_REF.exec(ft.parentCheckpointId) : null;
  if (!ft || !ref) return { config: configInput };
  const parentFile = path.resolve(baseDir, ref[1]!);
  const parentConfig = parseConfigOrThrow(JSON.parse(fs.readFileSync(parentFile, "utf8")));
  const sha = sha256Canonical(parentConfig);
  let parent = services.db
    .select()
    .from(runs)
    .where(and(eq(runs.configSha256, sha), eq(runs.status, "completed")))
    .get();
  if (!parent) {
    log(`training the parent config ${ref[1]} first`);
    const created = createRun(ctx, { experimentId, config: parentConfig, rationale: `parent of a fine-tune, trained from ${ref[1]}` });
    await services.orchestrator.launch(created.id);
    if (!(await waitForEnd(created.id))) return { queuedParent: created.id, file: ref[1]! };
    parent = services.db.select().from(runs).where(eq(runs.id, created.id)).get()!;
    if (parent.status !== "completed") throw new Error(`the parent run ${parent.id} ended ${parent.status}: ${parent.error ?? ""}`);
  }
  const cks = services.db.select().from(checkpoints).where(eq(checkpoints.runId, parent.id)).orderBy(checkpoints.epoch).all();
  const which = ref[2] ?? "best";
  const ck =
    which === "best" ? cks.find((c) => c.isBest) : which === "last" ? cks.at(-1) : cks.find((c) => c.epoch === Number(which.slice(5)));
  if (!ck) throw new Error(`run ${parent.id} has no checkpoint "${which}"`);
  log(`fine-tuning from run ${parent.id}, epoch ${ck.epoch} (${ck.sha256.slice(0, 12)}…)`);
  return { config: { ...(configInput as object), fineTune: { ...ft, parentCheckpointId: String(ck.id) } } };
}

export async function trainCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: "string" },
      "data-dir": { type: "string" },
      "key-dir": { type: "string" },
      experiment: { type: "string", default: "cli" },
      user: { type: "string", default: DEMO_USERS[1]!.email },
      backend: { type: "string", default: "auto" },
      rationale: { type: "string" },
      json: { type: "boolean", default: false },
      enqueue: { type: "boolean", default: false },
      "wait-timeout": { type: "string" },
    },
  });
  let waitTimeoutMs: number | null = null;
  if (values["wait-timeout"] !== undefined) {
    const seconds = Number(values["wait-timeout"]);
    if (!values.enqueue) {
      process.stderr.write("train: --wait-timeout needs --enqueue (it bounds the wait for a training worker to take the run)\n");
      return 2;
    }
    if (values["wait-timeout"].trim() === "" || !Number.isFinite(seconds) || seconds <= 0) {
      process.stderr.write(`train: --wait-timeout must be a number of seconds above 0, got "${values["wait-timeout"]}"\n`);
      return 2;
    }
    waitTimeoutMs = seconds * 1000;
  }
  if (values.enqueue && values.backend !== "auto") {
    process.stderr.write("train: --backend cannot be combined with --enqueue (the worker that trains the run chooses its backend)\n");
    return 2;
  }
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
  const services = createAppServices(values["data-dir"], {
    backend: values.backend as BackendName | "auto",
    keyDir: values["key-dir"],
    training: values.enqueue ? "workers" : "in-process",
  });
  const { db } = services;
  const found = await cliUserAndExperiment(services, "train", values.user, values.experiment);
  if (!found) return 2;
  const { ctx, experiment } = found;

  const workerCommand = [
    "npm run worker",
    ...(values["data-dir"] || values["key-dir"] ? ["--"] : []),
    ...(values["data-dir"] ? ["--data-dir", values["data-dir"]] : []),
    ...(values["key-dir"] ? ["--key-dir", values["key-dir"]] : []),
  ].join(" ");
  const say = (line: string) => process.stderr.write(`train: ${line}\n`);
  /** The run's end; with --enqueue through the workers' queue (queue-wait.ts), false when still queued at --wait-timeout. */
  const waitForEnd = async (runId: number): Promise<boolean> => {
    if (!values.enqueue) {
      await services.orchestrator.waitFor(runId);
      return true;
    }
    return (await waitForQueuedRun(db, runId, { timeoutMs: waitTimeoutMs, workerCommand, say })) === "ended";
  };
  /** --wait-timeout reached: the run stays queued, untouched; exit 3. */
  const stillQueued = (runId: number, note: string) => {
    say(
      `gave up waiting after --wait-timeout ${values["wait-timeout"]} s: no training worker took run ${runId}${note}. ` +
        `The run stays queued as it is (nothing was changed or lost); a worker trains it when one starts (${workerCommand}). ` +
        `Follow it with: npm run cli -- show --run ${runId}${values["data-dir"] ? ` --data-dir ${values["data-dir"]}` : ""}`,
    );
    if (values.json) process.stdout.write(`${JSON.stringify(runResult(db, runId))}\n`);
    checkpointAfterCliWrite(db, { dataDir: services.dataDir, auditKeys: services.auditKeys });
    services.db.$client.close();
    return 3;
  };

  const resolved = await resolveParentReference(services, ctx, experiment.id, configInput, process.cwd(), log, waitForEnd);
  if ("queuedParent" in resolved)
    return stillQueued(
      resolved.queuedParent,
      ` (the parent config ${resolved.file}, trained before the fine-tune; the fine-tune run was not created: run this command again once the parent has completed, and it is reused)`,
    );
  configInput = resolved.config;
  const run = createRun(ctx, {
    experimentId: experiment.id,
    config: configInput,
    rationale: values.rationale ?? `trained from ${values.config} on the command line`,
  });
  log(`run ${run.id} (${run.name}) queued${values.enqueue ? " for the training workers (npm run worker); waiting for its end" : ""}`);
  await services.orchestrator.launch(run.id);
  if (!(await waitForEnd(run.id))) return stillQueued(run.id, "");

  const code = printRunResult(db, run.id, { json: values.json, log });
  checkpointAfterCliWrite(db, { dataDir: services.dataDir, auditKeys: services.auditKeys });
  services.db.$client.close();
  return code;
}
