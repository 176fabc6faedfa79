/**
 * `resume --run ID [--data-dir DIR] [--key-dir DIR] [--backend B] [--rationale TEXT] [--user EMAIL] [--json]`:
 * resumes an interrupted or paused run in this process and trains it to its end, then prints the same result as
 * `train` (run-result.ts). A run still "running" whose training process died is first marked interrupted (event
 * run.interrupted), as a web start would; a paused run is resumed through a resume intervention (audited, with the
 * rationale). A run another live process holds (its lease, server/runs/orchestrator/leases.ts) is refused.
 */
import { parseArgs } from "node:util";
import { eq } from "drizzle-orm";
import { runs, users } from "@/db/schema";
import { createAppServices } from "@/server/app-context/app-services";
import { DEMO_USERS } from "@/server/demo/seed";
import { actorOf } from "@/server/users/service";
import { requestIntervention } from "@/server/runs/pilot";
import { pendingInterventions } from "@/server/runs/pilot-queries";
import type { BackendName } from "@/trainer/types";
import { checkpointAfterCliWrite } from "./checkpoint-after-write";
import { printRunResult } from "./run-result";

export async function resumeCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      run: { type: "string" },
      "data-dir": { type: "string" },
      "key-dir": { type: "string" },
      backend: { type: "string", default: "auto" },
      user: { type: "string", default: DEMO_USERS[1]!.email },
      rationale: { type: "string" },
      json: { type: "boolean", default: false },
    },
  });
  const runId = Number(values.run);
  if (!values.run || !Number.isInteger(runId)) {
    process.stderr.write("resume: --run ID is required\n");
    return 2;
  }
  const log = (s: string) => (values.json ? process.stderr : process.stdout).write(`${s}\n`);
  const services = createAppServices(values["data-dir"], { backend: values.backend as BackendName | "auto", keyDir: values["key-dir"] });
  const { db, orchestrator } = services;
  const fail = (message: string, code = 1) => {
    process.stderr.write(`resume: ${message}\n`);
    services.db.$client.close();
    return code;
  };
  const row = db.select({ status: runs.status }).from(runs).where(eq(runs.id, runId)).get();
  if (!row) return fail(`run ${runId} does not exist`, 2);
  if (await orchestrator.heldElsewhere(runId)) return fail(`run ${runId} is held by another live process (it is ${row.status} there)`);
  if (row.status === "running" && (await orchestrator.interruptIfOrphaned(runId, true)))
    log(`run ${runId}: its training process is gone; marked interrupted`);
  const status = db.select({ status: runs.status }).from(runs).where(eq(runs.id, runId)).get()!.status;
  if (status === "paused" && !pendingInterventions(db, runId).some((i) => i.kind === "resume")) {
    const user = db.select().from(users).where(eq(users.email, values.user.toLowerCase())).get();
    if (!user) return fail(`no user with email ${values.user}`, 2);
    requestIntervention(
      { db, actor: actorOf(user) },
      { runId, kind: "resume", rationale: values.rationale ?? "resumed from the command line (npm run cli -- resume)" },
    );
  }
  if (status !== "interrupted" && status !== "paused" && status !== "queued")
    return fail(`run ${runId} is ${status}; only an interrupted, paused or queued run can be resumed`, 2);
  if (!(await orchestrator.launch(runId))) return fail(`run ${runId} could not be taken over (another process holds it)`);
  log(`run ${runId} (${status}) resumes`);
  await orchestrator.waitFor(runId);
  const code = printRunResult(db, runId, { json: values.json, log });
  checkpointAfterCliWrite(db, { dataDir: services.dataDir, auditKeys: services.auditKeys });
  services.db.$client.close();
  return code;
}
