/**
 * `compress --run ID [--checkpoint best|EPOCH] --method float16|int8|prune|distill [--sparsity S] [--scope global|layer]
 * [--fine-tune-epochs N] [--student FILE] [--temperature T] [--alpha A] [--rationale TEXT] [--user EMAIL]
 * [--data-dir DIR] [--backend B] [--json]`: compresses a run's checkpoint through the same service as the web app
 * (server/runs/compression.ts: a run of origin "compress", audited), does the work here in a trainer worker, and prints
 * {runId, method, sizeBytes, parentSizeBytes, metrics, parentMetrics} (with --json exactly one object on stdout).
 * --student FILE: a JSON config with the student's model.layers (and optionally training settings) to distill into.
 * A checkpoint the run has not written yet (it is still queued or training) is refused with exit 1 (exit-codes.ts).
 *
 * Stores (issue 16): with DATABASE_URL=postgres://… the source run, the compression run and its ledger events are in the
 * PostgreSQL store and the work is done in this process (cli-train-store.ts), the same output; no audit checkpoint is
 * signed there (the web servers' timer signs it). --data-dir and --key-dir are refused there (exit 2).
 */
import fs from "node:fs";
import { parseArgs } from "node:util";
import { and, eq } from "drizzle-orm";
import { reader, type Store } from "@/db/store";
import { DEMO_USERS } from "@/server/demo/seed";
import { actorOf } from "@/server/users/service";
import { DomainError } from "@/server/errors";
import { compressionResult, createCompressionRun, type CompressRunInput } from "@/server/runs/compression";
import type { BackendName } from "@/trainer/types";
import { openTrainStoreFor } from "./cli-train-store";
import { BACKEND_USAGE } from "./backend-option";
import { isBadInput, runStatusOn } from "./exit-codes";

/** A run that may still write checkpoints: one it lacks now may come (exit-codes.ts: a state, exit 1, not bad input). */
const STILL_TRAINING = ["queued", "running", "paused", "interrupted"];

/**
 * The checkpoint asked for is missing because the run has not written it yet (it is still queued, running, paused or
 * interrupted): refused with exit 1, "compress: run N is <status>; compressing … needs …" on stderr. Null otherwise (an
 * unknown run or a finished run's missing checkpoint is the service's to refuse: bad input, exit 2).
 */
async function checkpointNotYetWritten(store: Store, input: CompressRunInput): Promise<1 | null> {
  const status = await runStatusOn(store, input.runId);
  if (status === undefined || !STILL_TRAINING.includes(status)) return null;
  const { checkpoints: ck } = store.tables;
  const which = input.checkpoint === "best" || input.checkpoint === undefined ? null : input.checkpoint;
  const where =
    which === null
      ? and(eq(ck.runId, input.runId), eq(ck.isBest, true))
      : "epoch" in which
        ? and(eq(ck.runId, input.runId), eq(ck.epoch, which.epoch))
        : and(eq(ck.runId, input.runId), eq(ck.id, which.checkpointId));
  if ((await reader(store).select({ id: ck.id }).from(ck).where(where).limit(1)).length > 0) return null;
  const what =
    which === null
      ? "its best checkpoint"
      : "epoch" in which
        ? `its checkpoint of epoch ${which.epoch}`
        : `checkpoint ${which.checkpointId}`;
  process.stderr.write(`compress: run ${input.runId} is ${status}; compressing ${what} needs a run that has written it\n`);
  return 1;
}

export const COMPRESS_USAGE = `usage: npm run cli -- compress --run ID [--checkpoint best|EPOCH] --method float16|int8|prune|distill
    [--sparsity S] [--scope global|layer] [--fine-tune-epochs N] [--student FILE] [--temperature T] [--alpha A]
    [--rationale TEXT] [--user EMAIL] [--data-dir DIR] [--backend ${BACKEND_USAGE}] [--json]
  Derives a smaller model from a run's checkpoint (a new run, evaluated on the same test partition) and prints its size and metrics against the source's.
  With DATABASE_URL=postgres://… on the PostgreSQL store (without --data-dir).`;

const numberOption = (name: string, value: string | undefined): number | undefined => {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n)) throw new Error(`--${name} must be a number, not "${value}"`);
  return n;
};

export async function compressCommand(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        run: { type: "string" },
        checkpoint: { type: "string", default: "best" },
        method: { type: "string" },
        sparsity: { type: "string" },
        scope: { type: "string" },
        "fine-tune-epochs": { type: "string" },
        student: { type: "string" },
        temperature: { type: "string" },
        alpha: { type: "string" },
        rationale: { type: "string" },
        name: { type: "string" },
        user: { type: "string", default: DEMO_USERS[1]!.email },
        "data-dir": { type: "string" },
        "key-dir": { type: "string" },
        backend: { type: "string", default: "auto" },
        json: { type: "boolean", default: false },
      },
    }));
  } catch (err) {
    process.stderr.write(`compress: ${(err as Error).message}\n${COMPRESS_USAGE}\n`);
    return 2;
  }
  const runId = Number(values.run);
  if (!values.run || !Number.isInteger(runId) || !values.method) {
    process.stderr.write(`compress: --run ID and --method are required\n${COMPRESS_USAGE}\n`);
    return 2;
  }
  let input: CompressRunInput;
  try {
    const checkpoint = values.checkpoint === "best" ? ("best" as const) : { epoch: Number(values.checkpoint) };
    if (checkpoint !== "best" && !Number.isInteger(checkpoint.epoch))
      throw new Error(`--checkpoint must be "best" or an epoch number, not "${values.checkpoint}"`);
    let student: unknown;
    if (values.student !== undefined) {
      try {
        student = JSON.parse(fs.readFileSync(values.student, "utf8")) as unknown;
      } catch (e) {
        throw new Error(`--student ${values.student}: ${(e as Error).message}`);
      }
    }
    input = {
      runId,
      checkpoint,
      method: values.method as CompressRunInput["method"],
      sparsity: numberOption("sparsity", values.sparsity),
      scope: values.scope as CompressRunInput["scope"],
      fineTuneEpochs: numberOption("fine-tune-epochs", values["fine-tune-epochs"]),
      student: student as CompressRunInput["student"],
      temperature: numberOption("temperature", values.temperature),
      alpha: numberOption("alpha", values.alpha),
      rationale: values.rationale ?? `${values.method} compression from the command line`,
      ...(values.name ? { name: values.name } : {}),
    };
  } catch (e) {
    process.stderr.write(`compress: ${(e as Error).message}\n`);
    return 2;
  }
  const log = (s: string) => (values.json ? process.stderr : process.stdout).write(`${s}\n`);
  const on = await openTrainStoreFor("compress", {
    dataDir: values["data-dir"],
    keyDir: values["key-dir"],
    backend: values.backend as BackendName | "auto",
    enqueue: false,
  });
  if (!on) return 2;
  const { store } = on;
  try {
    const { users } = store.tables;
    const [user] = await reader(store).select().from(users).where(eq(users.email, values.user.toLowerCase())).limit(1);
    if (!user) {
      process.stderr.write(`compress: no user with email ${values.user}\n`);
      return 2;
    }
    const refused = await checkpointNotYetWritten(store, input);
    if (refused !== null) return refused;
    let run;
    try {
      run = await createCompressionRun(
        { db: store, actor: actorOf(user), artifacts: on.artifacts, dataDir: on.orchestrator.deps.dataDir },
        input,
      );
    } catch (e) {
      // zod (a parameter of the wrong type or an unknown method) or the service's own checks: nothing was recorded.
      const message = e instanceof DomainError ? e.message : e instanceof Error && e.name === "ZodError" ? zodMessage(e) : null;
      if (message === null) throw e;
      process.stderr.write(`compress: ${message}\n`);
      // A state of the record (the run wrote no such checkpoint yet, found after the check above): exit 1, as that check.
      return e instanceof DomainError && !isBadInput(e) ? 1 : 2;
    }
    log(`run ${run.id} (${run.name}) queued: ${input.method} of run ${runId}'s checkpoint ${run.parentCheckpointId}`);
    await on.orchestrator.launch(run.id);
    await on.orchestrator.waitFor(run.id);
    const r = await compressionResult(store, run.id);
    const out = {
      runId: r.runId,
      method: r.method,
      sizeBytes: r.sizeBytes,
      parentSizeBytes: r.parentSizeBytes,
      metrics: r.metrics,
      parentMetrics: r.parentMetrics,
    };
    if (values.json) process.stdout.write(`${JSON.stringify({ ...out, status: r.status, ...(r.error ? { error: r.error } : {}) })}\n`);
    else {
      log(`run ${r.runId}: ${r.status}${r.error ? ` — ${r.error}` : ""}`);
      log(`  size: ${r.sizeBytes ?? "-"} bytes (source ${r.parentSizeBytes ?? "-"} bytes)`);
      for (const [k, v] of Object.entries(r.metrics)) log(`  ${k}: ${Number.isInteger(v) ? v : v.toFixed(4)}`);
    }
    on.afterWrite();
    return r.status === "completed" ? 0 : 1;
  } finally {
    await on.close();
  }
}

function zodMessage(e: Error): string {
  const issues = (e as Error & { issues?: { path: PropertyKey[]; message: string }[] }).issues ?? [];
  return issues.length ? issues.map((i) => `${i.path.map(String).join(".") || "input"}: ${i.message}`).join("; ") : e.message;
}
