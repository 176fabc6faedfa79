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
 *
 * Stores (issue 16): with `DATABASE_URL=postgres://…` the command runs on the PostgreSQL store (pg-store-services.ts:
 * migrated store, artifacts in PostgreSQL) instead of a data directory: the same user, experiment, run rows and ledger
 * events, trained here (`new RunOrchestrator` on the store) or queued for the PostgreSQL workers (`npm run worker` with
 * the same DATABASE_URL, on any machine), and the same JSON. It signs no audit checkpoint there: the signing key stays
 * with the web servers, whose timer signs the checkpoints these events make due. --data-dir and --key-dir name a SQLite
 * installation and are refused with DATABASE_URL.
 */
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { and, asc, eq } from "drizzle-orm";
import { reader } from "@/db/store";
import { postgresUrlFromEnv } from "@/server/app-context/pg-store-services";
import type { SignedInActor } from "@/server/app-context/service-context";
import { DEMO_USERS } from "@/server/demo/seed";
import { createRunOnStore, parseConfigOrThrow } from "@/server/runs/service";
import { refuseUnbuildableConfig } from "@/server/runs/trainer-tasks";
import type { BackendName } from "@/trainer/types";
import { sha256Canonical } from "@/contracts/canonical";
import { cliUserAndExperimentOn } from "./cli-experiment";
import { openTrainStore, type TrainStore } from "./cli-train-store";
import { sqliteOptionsOnPostgresRefusal } from "./train-store-refusal";
import { unknownBackendRefusal } from "./backend-option";
import { printRunResultOn, runResultOn } from "./run-result";
import { waitForQueuedRun } from "./queue-wait";

/**
 * A config file may name its fine-tuning parent as "config:FILE@best|@last|@epochN" instead of a checkpoint id:
 * the parent config is trained first in the same data directory (or an earlier completed run of exactly that
 * config is reused), and the reference is replaced by that checkpoint's id before the run is created.
 */
const PARENT_REF = /^config:(.+?)(?:@(best|last|epoch\d+))?$/;

async function resolveParentReference(
  on: TrainStore,
  actor: SignedInActor,
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
  const { store } = on;
  const { runs, checkpoints } = store.tables;
  const runById = async (id: number) => (await reader(store).select().from(runs).where(eq(runs.id, id)).limit(1))[0];
  let [parent] = await reader(store)
    .select()
    .from(runs)
    .where(and(eq(runs.configSha256, sha), eq(runs.status, "completed")))
    .orderBy(asc(runs.id))
    .limit(1);
  if (!parent) {
    log(`training the parent config ${ref[1]} first`);
    await refuseUnbuildableConfig({ db: store, artifacts: on.artifacts, dataDir: on.orchestrator.deps.dataDir }, parentConfig);
    const created = await createRunOnStore(
      { db: store, actor, artifacts: on.artifacts },
      { experimentId, config: parentConfig, rationale: `parent of a fine-tune, trained from ${ref[1]}` },
    );
    await on.orchestrator.launch(created.id);
    if (!(await waitForEnd(created.id))) return { queuedParent: created.id, file: ref[1]! };
    parent = (await runById(created.id))!;
    if (parent.status !== "completed") throw new Error(`the parent run ${parent.id} ended ${parent.status}: ${parent.error ?? ""}`);
  }
  const cks = await reader(store).select().from(checkpoints).where(eq(checkpoints.runId, parent.id)).orderBy(asc(checkpoints.epoch));
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
  const badBackend = unknownBackendRefusal("train", values.backend);
  if (badBackend) {
    process.stderr.write(badBackend);
    return 2;
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
  const backend = values.backend as BackendName | "auto";
  const pgUrl = postgresUrlFromEnv();
  const refusal = sqliteOptionsOnPostgresRefusal("train", { dataDir: values["data-dir"], keyDir: values["key-dir"] });
  if (refusal) {
    process.stderr.write(refusal);
    return 2;
  }
  const on = await openTrainStore({ dataDir: values["data-dir"], keyDir: values["key-dir"], backend, enqueue: values.enqueue });
  const { store } = on;
  const found = await cliUserAndExperimentOn(store, await on.seedDemo(), "train", values.user, values.experiment);
  if (!found) {
    await on.close();
    return 2;
  }
  const { actor, experiment } = found;

  const workerCommand = pgUrl
    ? "DATABASE_URL=… npm run worker (the same PostgreSQL database, on any machine)"
    : [
        "npm run worker",
        ...(values["data-dir"] || values["key-dir"] ? ["--"] : []),
        ...(values["data-dir"] ? ["--data-dir", values["data-dir"]] : []),
        ...(values["key-dir"] ? ["--key-dir", values["key-dir"]] : []),
      ].join(" ");
  const say = (line: string) => process.stderr.write(`train: ${line}\n`);
  /** The run's end; with --enqueue through the workers' queue (queue-wait.ts), false when still queued at --wait-timeout. */
  const waitForEnd = async (runId: number): Promise<boolean> => {
    if (!values.enqueue) {
      await on.orchestrator.waitFor(runId);
      return true;
    }
    return (await waitForQueuedRun(store, runId, { timeoutMs: waitTimeoutMs, workerCommand, say })) === "ended";
  };
  /** --wait-timeout reached: the run stays queued, untouched; exit 3. */
  const stillQueued = async (runId: number, note: string) => {
    say(
      `gave up waiting after --wait-timeout ${values["wait-timeout"]} s: no training worker took run ${runId}${note}. ` +
        `The run stays queued as it is (nothing was changed or lost); a worker trains it when one starts (${workerCommand}). ` +
        (pgUrl
          ? `Follow it on the web app (run ${runId}).`
          : `Follow it with: npm run cli -- show --run ${runId}${values["data-dir"] ? ` --data-dir ${values["data-dir"]}` : ""}`),
    );
    if (values.json) process.stdout.write(`${JSON.stringify(await runResultOn(store, runId))}\n`);
    on.afterWrite();
    await on.close();
    return 3;
  };

  const resolved = await resolveParentReference(on, actor, experiment.id, configInput, process.cwd(), log, waitForEnd);
  if ("queuedParent" in resolved)
    return stillQueued(
      resolved.queuedParent,
      ` (the parent config ${resolved.file}, trained before the fine-tune; the fine-tune run was not created: run this command again once the parent has completed, and it is reused)`,
    );
  configInput = resolved.config;
  // A model that cannot be built for its data is refused before the run is recorded (exit 2), as runs.create does.
  await refuseUnbuildableConfig({ db: store, artifacts: on.artifacts, dataDir: on.orchestrator.deps.dataDir }, configInput);
  const run = await createRunOnStore(
    { db: store, actor, artifacts: on.artifacts },
    {
      experimentId: experiment.id,
      config: configInput,
      rationale: values.rationale ?? `trained from ${values.config} on the command line`,
    },
  );
  log(`run ${run.id} (${run.name}) queued${values.enqueue ? " for the training workers (npm run worker); waiting for its end" : ""}`);
  await on.orchestrator.launch(run.id);
  if (!(await waitForEnd(run.id))) return stillQueued(run.id, "");

  const code = await printRunResultOn(store, run.id, { json: values.json, log });
  on.afterWrite();
  await on.close();
  return code;
}
