/**
 * `rerun --run ID [--data-dir DIR] [--user EMAIL] [--backend B] [--rationale T] [--json]`: re-runs a finished run,
 * replaying its piloting path (server/runs/replay.ts createRerun: its schedule and applied live changes become the
 * re-run's planned entries), trains it to completion in this process, and prints the same result as `train`
 * (run-result.ts), plus `reproduced`: whether the weights hash equals the source run's. A source still in training
 * (queued, running, paused, interrupted) is refused with exit 1 (exit-codes.ts): its piloting path is not complete yet.
 *
 * Stores (issue 16): with DATABASE_URL=postgres://… the re-run is created in the PostgreSQL store and trains in this
 * process (cli-train-store.ts), with the same JSON; no audit checkpoint is signed there (the web servers' timer signs
 * it). --data-dir and --key-dir are refused there (exit 2).
 */
import { parseArgs } from "node:util";
import { eq } from "drizzle-orm";
import { reader } from "@/db/store";
import { DEMO_USERS } from "@/server/demo/seed";
import { actorOf } from "@/server/users/service";
import { createRerunOn, RERUNNABLE } from "@/server/runs/replay";
import type { BackendName } from "@/trainer/types";
import { openTrainStoreFor } from "./cli-train-store";
import { BACKEND_USAGE } from "./backend-option";
import { runResultOn } from "./run-result";
import { runStatusOn, wrongRunState } from "./exit-codes";

export const RERUN_USAGE = `usage: npm run cli -- rerun --run ID [--data-dir DIR] [--user EMAIL] [--backend ${BACKEND_USAGE}] [--rationale TEXT] [--json]
  Re-runs a finished run with the same config, replaying its planned and piloted changes at their epochs, and trains it here.`;

export async function rerunCommand(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        run: { type: "string" },
        "data-dir": { type: "string" },
        "key-dir": { type: "string" },
        user: { type: "string", default: DEMO_USERS[1]!.email },
        backend: { type: "string", default: "auto" },
        rationale: { type: "string" },
        json: { type: "boolean", default: false },
      },
    }));
  } catch (err) {
    process.stderr.write(`rerun: ${(err as Error).message}\n${RERUN_USAGE}\n`);
    return 2;
  }
  const runId = Number(values.run);
  if (!values.run || !Number.isInteger(runId)) {
    process.stderr.write(`rerun: --run ID is required\n${RERUN_USAGE}\n`);
    return 2;
  }
  const log = (s: string) => (values.json ? process.stderr : process.stdout).write(`${s}\n`);
  const on = await openTrainStoreFor("rerun", {
    dataDir: values["data-dir"],
    keyDir: values["key-dir"],
    backend: values.backend as BackendName | "auto",
    enqueue: false,
  });
  if (!on) return 2;
  const { store, orchestrator } = on;
  const { users, runs } = store.tables;
  try {
    const [user] = await reader(store).select().from(users).where(eq(users.email, values.user.toLowerCase())).limit(1);
    if (!user) {
      process.stderr.write(`rerun: no user with email ${values.user}\n`);
      return 2;
    }
    const status = await runStatusOn(store, runId);
    if (!status) {
      process.stderr.write(`rerun: run ${runId} was not found\n`);
      return 2;
    }
    const refused = wrongRunState("rerun", runId, status, "rerun", RERUNNABLE);
    if (refused !== null) return refused;
    const run = await createRerunOn(
      { db: store, artifacts: on.artifacts, dataDir: orchestrator.deps.dataDir, actor: actorOf(user) },
      { runId, rationale: values.rationale },
    );
    log(`run ${run.id} (${run.name}) queued: re-run of run ${runId}`);
    await orchestrator.launch(run.id);
    await orchestrator.waitFor(run.id);
    const result = await runResultOn(store, run.id);
    const [source] = await reader(store).select({ sha: runs.finalWeightsSha256 }).from(runs).where(eq(runs.id, runId)).limit(1);
    const out = { ...result, rerunOf: runId, reproduced: source?.sha ? source.sha === result.weightsSha256 : null };
    if (values.json) process.stdout.write(`${JSON.stringify(out)}\n`);
    else {
      log(`run ${out.runId}: ${out.status} on ${out.backend ?? "?"}${out.error ? ` — ${out.error}` : ""}`);
      log(`  weights sha256: ${out.weightsSha256 ?? "-"} (${out.reproduced ? "reproduces" : "differs from"} run ${runId})`);
    }
    on.afterWrite();
    return out.status === "completed" ? 0 : 1;
  } finally {
    await on.close();
  }
}
