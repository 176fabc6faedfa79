/**
 * `pilot --run ID (--pause | --resume | --stop | --set PATH=VALUE ... | --rollback CHECKPOINT_ID [--set ...])
 *  --rationale TEXT [--as EMAIL] [--data-dir DIR] [--key-dir DIR] [--json]`: records a pilot's intervention on a
 * run through the same service as the web app (engineers only, audited). The intervention is pending: it takes
 * effect at the run's next epoch boundary, once the process training the run picks it up.
 * With --json, stdout carries exactly one object: the intervention {id, runId, kind, status, changes, ...}.
 * A rollback of a paused or completed run takes effect at once and its branch trains here (rollbackCommand).
 *
 * The acting user is --as EMAIL (--user EMAIL, as other commands name it, is accepted too), defaulting to the
 * demo engineer like train and register.
 */
import { parseArgs } from "node:util";
import { eq } from "drizzle-orm";
import { users } from "@/db/schema";
import { openDatabase, resolveDataDir } from "@/db/client";
import { DEMO_USERS } from "@/server/demo/seed";
import { actorOf } from "@/server/users/service";
import { requestIntervention, type RequestInterventionInput } from "@/server/runs/pilot";
import { checkpointAfterCliWrite } from "./checkpoint-after-write";
import { createAppServices } from "@/server/app-context/app-services";
import { requestPilotInterventionOn } from "@/server/runs/service";
import { runResult } from "./run-result";

export const PILOT_USAGE = `usage: npm run cli -- pilot --run ID (--pause | --resume | --stop | --set PATH=VALUE ... | --rollback CHECKPOINT_ID [--set PATH=VALUE ...])
                          --rationale TEXT [--as EMAIL] [--data-dir DIR] [--json]
  Records an intervention as pending: it takes effect at the run's next epoch boundary, once the trainer picks it up.
  VALUE is JSON when it parses as JSON (0.01, 20, null, {"patience":3}), else a string (balanced).
  PATH: training.learningRate, training.lrSchedule, training.epochs, training.earlyStopping[.metric|.mode|.patience|.minDelta],
        training.classWeights, training.checkpointEvery, fineTune.freezeLayers`;

function parseValue(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

export async function pilotCommand(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        run: { type: "string" },
        pause: { type: "boolean", default: false },
        resume: { type: "boolean", default: false },
        stop: { type: "boolean", default: false },
        set: { type: "string", multiple: true, default: [] },
        rollback: { type: "string" },
        rationale: { type: "string" },
        as: { type: "string" },
        user: { type: "string" },
        "data-dir": { type: "string" },
        "key-dir": { type: "string" },
        json: { type: "boolean", default: false },
        help: { type: "boolean", default: false },
      },
    }));
  } catch (err) {
    process.stderr.write(`pilot: ${(err as Error).message}\n${PILOT_USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${PILOT_USAGE}\n`);
    return 0;
  }
  const runId = Number(values.run);
  const kinds = (["pause", "resume", "stop"] as const).filter((k) => values[k]);
  if (values.rollback !== undefined) kinds.push("rollback" as never);
  const kind = kinds.length ? kinds[0]! : values.set.length ? "set" : null;
  if (!values.run || !Number.isInteger(runId) || kind === null || kinds.length > 1 || !values.rationale) {
    process.stderr.write(
      `pilot: --run ID, exactly one of --pause/--resume/--stop/--set/--rollback, and --rationale TEXT are required\n${PILOT_USAGE}\n`,
    );
    return 2;
  }
  const set: Record<string, unknown> = {};
  for (const s of values.set) {
    const eqAt = s.indexOf("=");
    if (eqAt <= 0) {
      process.stderr.write(`pilot: --set takes PATH=VALUE, not "${s}"\n`);
      return 2;
    }
    set[s.slice(0, eqAt)] = parseValue(s.slice(eqAt + 1));
  }
  const input: RequestInterventionInput = { runId, kind, rationale: values.rationale };
  if (values.set.length) input.set = set;
  if (values.rollback !== undefined) input.fromCheckpointId = Number(values.rollback);

  const email = (values.as ?? values.user ?? DEMO_USERS[1]!.email).toLowerCase();
  if (values.rollback !== undefined) return rollbackCommand(input, email, values);
  const dataDir = resolveDataDir(values["data-dir"]);
  const db = openDatabase(dataDir);
  try {
    const user = db.select().from(users).where(eq(users.email, email)).get();
    if (!user) {
      process.stderr.write(`pilot: no user with email ${email}\n`);
      return 2;
    }
    const out = requestIntervention({ db, actor: actorOf(user) }, input);
    checkpointAfterCliWrite(db, { dataDir, keyDir: values["key-dir"] });
    const shown = {
      id: out.id,
      runId: out.runId,
      kind: out.kind,
      status: out.status,
      changes: out.changes,
      fromCheckpointId: out.fromCheckpointId,
      rationale: out.rationale,
      requestedBy: user.email,
      requestedAt: out.requestedAt,
    };
    if (values.json) process.stdout.write(`${JSON.stringify(shown)}\n`);
    else
      process.stdout.write(
        `intervention ${out.id} on run ${runId}: ${out.kind}${out.changes.map((c) => ` ${c.path} ${JSON.stringify(c.oldValue)} → ${JSON.stringify(c.newValue)}`).join(",")}` +
          ` (status: pending; takes effect at the next epoch boundary)\n`,
      );
    return 0;
  } finally {
    db.$client.close();
  }
}

/**
 * A rollback through the runs service (requestPilotInterventionOn): of a paused or completed run it takes effect now
 * and its branch trains to completion in this process (printed like `train`, under "branch"); of a running run it
 * stays pending until the process training it reaches its next epoch boundary, which creates and trains the branch.
 */
async function rollbackCommand(
  input: RequestInterventionInput,
  email: string,
  values: { "data-dir"?: string; "key-dir"?: string; json: boolean },
): Promise<number> {
  const services = createAppServices(values["data-dir"], { keyDir: values["key-dir"] });
  const { db } = services;
  try {
    const user = db.select().from(users).where(eq(users.email, email)).get();
    if (!user) {
      process.stderr.write(`pilot: no user with email ${email}\n`);
      return 2;
    }
    const out: Awaited<ReturnType<typeof requestPilotInterventionOn>> & { branchRunId?: number } = await requestPilotInterventionOn(
      { ...services, actor: actorOf(user) },
      services.orchestrator,
      input,
    );
    const log = (s: string) => (values.json ? process.stderr : process.stdout).write(`${s}\n`);
    if (out.branchRunId !== undefined) {
      log(`rollback ${out.id}: branch run ${out.branchRunId} from checkpoint ${out.fromCheckpointId}; training it here`);
      await services.orchestrator.waitFor(out.branchRunId);
    } else log(`rollback ${out.id} on run ${out.runId}: pending; takes effect at the run's next epoch boundary`);
    const shown = {
      id: out.id,
      runId: out.runId,
      kind: out.kind,
      status: out.status,
      changes: out.changes,
      fromCheckpointId: out.fromCheckpointId,
      rationale: out.rationale,
      requestedBy: user.email,
      requestedAt: out.requestedAt,
      branchRunId: out.branchRunId ?? null,
      branch: out.branchRunId === undefined ? null : runResult(db, out.branchRunId),
    };
    if (values.json) process.stdout.write(`${JSON.stringify(shown)}\n`);
    checkpointAfterCliWrite(db, { dataDir: services.dataDir, auditKeys: services.auditKeys });
    return 0;
  } finally {
    db.$client.close();
  }
}
