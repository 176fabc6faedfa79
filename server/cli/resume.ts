/**
 * `resume --run ID [--data-dir DIR] [--key-dir DIR] [--backend B] [--rationale TEXT] [--user EMAIL] [--json]`:
 * resumes an interrupted or paused run in this process and trains it to its end, then prints the same result as
 * `train` (run-result.ts). A run still "running" whose training process died is first marked interrupted (event
 * run.interrupted), as a web start would; a paused run is resumed through a resume intervention (audited, with the
 * rationale). A run another live process holds (its lease, server/runs/orchestrator/leases.ts) is refused.
 *
 * Stores (issue 16): with DATABASE_URL=postgres://… the run is resumed on the PostgreSQL store and trains in this process
 * (cli-train-store.ts), from its last checkpoint's resume state kept in PostgreSQL, with the same JSON; no audit
 * checkpoint is signed there (the web servers' timer signs it). A lease is alive there while its heartbeat, on the
 * database's clock, is younger than RUNLEDGER_LEASE_TIMEOUT_S (a worker's or another machine's process included), so a
 * run whose trainer just died is refused until its lease has expired. --data-dir and --key-dir are refused (exit 2).
 */
import { parseArgs } from "node:util";
import { eq } from "drizzle-orm";
import { readPart, reader } from "@/db/store";
import { DEMO_USERS } from "@/server/demo/seed";
import { actorOf } from "@/server/users/service";
import { requestInterventionOn } from "@/server/runs/pilot";
import { pendingInterventionsIn } from "@/server/runs/pilot-queries";
import type { BackendName } from "@/trainer/types";
import { openTrainStoreFor, type TrainStore } from "./cli-train-store";
import { printRunResultOn } from "./run-result";
import { runStatusOn, wrongRunState } from "./exit-codes";

/** What resume takes over: a run whose trainer is gone, one a person paused, one no process has started yet. */
const RESUMABLE = ["interrupted", "paused", "queued"] as const;

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
  const on = await openTrainStoreFor("resume", {
    dataDir: values["data-dir"],
    keyDir: values["key-dir"],
    backend: values.backend as BackendName | "auto",
    enqueue: false,
  });
  if (!on) return 2;
  try {
    return await resumeOn(on, runId, values, log);
  } finally {
    await on.close();
  }
}

async function resumeOn(
  on: TrainStore,
  runId: number,
  values: { user: string; rationale?: string; json: boolean },
  log: (s: string) => void,
): Promise<number> {
  const { store, orchestrator } = on;
  const fail = (message: string, code = 1) => {
    process.stderr.write(`resume: ${message}\n`);
    return code;
  };
  const found = await runStatusOn(store, runId);
  if (!found) return fail(`run ${runId} does not exist`, 2);
  if (await orchestrator.heldElsewhere(runId)) return fail(`run ${runId} is held by another live process (it is ${found} there)`);
  if (found === "running" && (await orchestrator.interruptIfOrphaned(runId, true)))
    log(`run ${runId}: its training process is gone; marked interrupted`);
  const status = (await runStatusOn(store, runId))!;
  if (
    status === "paused" &&
    !(await readPart(store, (q) => pendingInterventionsIn(q, store.tables, runId))).some((i) => i.kind === "resume")
  ) {
    const { users } = store.tables;
    const [user] = await reader(store).select().from(users).where(eq(users.email, values.user.toLowerCase())).limit(1);
    if (!user) return fail(`no user with email ${values.user}`, 2);
    await requestInterventionOn(
      { db: store, actor: actorOf(user) },
      { runId, kind: "resume", rationale: values.rationale ?? "resumed from the command line (npm run cli -- resume)" },
    );
  }
  const refused = wrongRunState("resume", runId, status, "resume", RESUMABLE);
  if (refused !== null) return refused;
  if (!(await orchestrator.launch(runId))) return fail(`run ${runId} could not be taken over (another process holds it)`);
  log(`run ${runId} (${status}) resumes`);
  await orchestrator.waitFor(runId);
  const code = await printRunResultOn(store, runId, { json: values.json, log });
  on.afterWrite();
  return code;
}
