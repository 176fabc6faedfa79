/**
 * `rerun --run ID [--data-dir DIR] [--user EMAIL] [--backend B] [--rationale T] [--json]`: re-runs a finished run,
 * replaying its piloting path (server/runs/replay.ts createRerun: its schedule and applied live changes become the
 * re-run's planned entries), trains it to completion in this process, and prints the same result as `train`
 * (run-result.ts), plus `reproduced`: whether the weights hash equals the source run's.
 */
import { parseArgs } from "node:util";
import { eq } from "drizzle-orm";
import { runs, users } from "@/db/schema";
import { createAppServices } from "@/server/app-context/app-services";
import { DEMO_USERS } from "@/server/demo/seed";
import { actorOf } from "@/server/users/service";
import { createRerunOn } from "@/server/runs/replay";
import type { BackendName } from "@/trainer/types";
import { checkpointAfterCliWrite } from "./checkpoint-after-write";
import { runResult } from "./run-result";

export const RERUN_USAGE = `usage: npm run cli -- rerun --run ID [--data-dir DIR] [--user EMAIL] [--backend auto|wasm|cpu] [--rationale TEXT] [--json]
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
  const services = createAppServices(values["data-dir"], { backend: values.backend as BackendName | "auto", keyDir: values["key-dir"] });
  const { db } = services;
  try {
    const user = db.select().from(users).where(eq(users.email, values.user.toLowerCase())).get();
    if (!user) {
      process.stderr.write(`rerun: no user with email ${values.user}\n`);
      return 2;
    }
    const run = await createRerunOn({ ...services, actor: actorOf(user) }, { runId, rationale: values.rationale });
    log(`run ${run.id} (${run.name}) queued: re-run of run ${runId}`);
    await services.orchestrator.launch(run.id);
    await services.orchestrator.waitFor(run.id);
    const result = runResult(db, run.id);
    const source = db.select({ sha: runs.finalWeightsSha256 }).from(runs).where(eq(runs.id, runId)).get();
    const out = { ...result, rerunOf: runId, reproduced: source?.sha ? source.sha === result.weightsSha256 : null };
    if (values.json) process.stdout.write(`${JSON.stringify(out)}\n`);
    else {
      log(`run ${out.runId}: ${out.status} on ${out.backend ?? "?"}${out.error ? ` — ${out.error}` : ""}`);
      log(`  weights sha256: ${out.weightsSha256 ?? "-"} (${out.reproduced ? "reproduces" : "differs from"} run ${runId})`);
    }
    checkpointAfterCliWrite(db, { dataDir: services.dataDir, auditKeys: services.auditKeys });
    return out.status === "completed" ? 0 : 1;
  } finally {
    db.$client.close();
  }
}
