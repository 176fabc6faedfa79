/**
 * `pilot --run ID (--pause | --resume | --stop | --set PATH=VALUE ... | --rollback CHECKPOINT_ID [--set ...])
 *  --rationale TEXT [--as EMAIL] [--data-dir DIR] [--key-dir DIR] [--json]`: records a pilot's intervention on a
 * run through the same service as the web app (engineers only, audited). The intervention is pending: it takes
 * effect at the run's next epoch boundary, once the process training the run picks it up.
 * With --json, stdout carries exactly one object: the intervention {id, runId, kind, status, changes, ...}.
 * A rollback of a paused or completed run takes effect at once and its branch trains here (rollbackCommand), on
 * --backend auto|tensorflow|wasm|cpu (backend-option.ts; default auto, as train, resume and rerun choose; the run records the backend it trained on).
 *
 * The acting user is --as EMAIL (--user EMAIL, as other commands name it, is accepted too), defaulting to the
 * demo engineer like train and register. An unknown run is refused with exit 2, as show and resume do; a run in a state
 * the intervention does not apply to (PILOT_ALLOWED_STATES: pause a completed run) with exit 1 (exit-codes.ts).
 *
 * Stores (issue 16): with DATABASE_URL=postgres://… the intervention and its ledger event are written in the PostgreSQL
 * store (cli-store.ts; the due audit checkpoint is signed only with the installation's key in the key directory), and a
 * rollback's branch trains in this process on that store (cli-train-store.ts; no checkpoint signed there). --data-dir
 * is refused there with exit 2, and so is --key-dir with --rollback (as train refuses it).
 */
import { parseArgs } from "node:util";
import { eq } from "drizzle-orm";
import { asStore, reader, type Store } from "@/db/store";
import type { Db } from "@/db/client";
import { DEMO_USERS } from "@/server/demo/seed";
import { actorOf } from "@/server/users/service";
import { PILOT_ALLOWED_STATES, requestInterventionOn, type RequestInterventionInput } from "@/server/runs/pilot";
import type { InterventionKind } from "@/db/schema";
import { requestPilotInterventionOn } from "@/server/runs/service";
import type { BackendName } from "@/trainer/types";
import { dataDirWithPostgresRefusal, openCliStore } from "./cli-store";
import { openTrainStore } from "./cli-train-store";
import { runResultOn } from "./run-result";
import { sqliteOptionsOnPostgresRefusal } from "./train-store-refusal";
import { BACKEND_USAGE, unknownBackendRefusal } from "./backend-option";
import { runStatusOn, wrongRunState } from "./exit-codes";

export const PILOT_USAGE = `usage: npm run cli -- pilot --run ID (--pause | --resume | --stop | --set PATH=VALUE ... | --rollback CHECKPOINT_ID [--set PATH=VALUE ...])
                          --rationale TEXT [--as EMAIL] [--data-dir DIR] [--backend ${BACKEND_USAGE}] [--json]
  Records an intervention as pending: it takes effect at the run's next epoch boundary, once the trainer picks it up.
  A rollback of a paused or completed run branches at once and trains the branch here, on --backend (default auto).
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
        backend: { type: "string" },
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
  if (values.backend !== undefined && values.rollback === undefined) {
    process.stderr.write(`pilot: --backend applies to --rollback only (its branch trains here)\n${PILOT_USAGE}\n`);
    return 2;
  }
  const badBackend = values.backend === undefined ? null : unknownBackendRefusal("pilot", values.backend);
  if (badBackend) {
    process.stderr.write(badBackend);
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
  const refusal =
    values.rollback !== undefined
      ? sqliteOptionsOnPostgresRefusal("pilot", { dataDir: values["data-dir"], keyDir: values["key-dir"] })
      : dataDirWithPostgresRefusal("pilot", values["data-dir"]);
  if (refusal) {
    process.stderr.write(refusal);
    return 2;
  }
  if (values.rollback !== undefined) return rollbackCommand(input, email, values);
  const on = await openCliStore({ dataDir: values["data-dir"], keyDir: values["key-dir"] });
  try {
    const user = await userAndRun(on.store, email, runId, kind);
    if (typeof user === "number") return user;
    const out = await requestInterventionOn({ db: on.store, actor: actorOf(user) }, input);
    await on.checkpointAfterWrite();
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
    await on.close();
  }
}

/**
 * The acting user, once the run is known to exist and to be in a state the intervention applies to; else the exit code
 * (after saying why on stderr): 2 for an unknown user or run, 1 for a run in the wrong state (exit-codes.ts).
 */
async function userAndRun(db: Store | Db, email: string, runId: number, kind: InterventionKind) {
  const store = asStore(db);
  const { users } = store.tables;
  const [user] = await reader(store).select().from(users).where(eq(users.email, email)).limit(1);
  if (!user) {
    process.stderr.write(`pilot: no user with email ${email}\n`);
    return 2;
  }
  const status = await runStatusOn(store, runId);
  if (!status) {
    process.stderr.write(`pilot: run ${runId} does not exist\n`);
    return 2;
  }
  return wrongRunState("pilot", runId, status, kind, PILOT_ALLOWED_STATES[kind]) ?? user;
}

/**
 * A rollback through the runs service (requestPilotInterventionOn): of a paused or completed run it takes effect now
 * and its branch trains to completion in this process (printed like `train`, under "branch"); of a running run it
 * stays pending until the process training it reaches its next epoch boundary, which creates and trains the branch.
 */
async function rollbackCommand(
  input: RequestInterventionInput,
  email: string,
  values: { "data-dir"?: string; "key-dir"?: string; backend?: string; json: boolean },
): Promise<number> {
  // As train, resume and rerun: --backend, default auto (RUNLEDGER_BACKEND is the web server's and the worker's setting).
  const backend = (values.backend ?? "auto") as BackendName | "auto";
  const on = await openTrainStore({ dataDir: values["data-dir"], keyDir: values["key-dir"], backend, enqueue: false });
  const { store, orchestrator } = on;
  try {
    const user = await userAndRun(store, email, input.runId, input.kind);
    if (typeof user === "number") return user;
    const out: Awaited<ReturnType<typeof requestPilotInterventionOn>> & { branchRunId?: number } = await requestPilotInterventionOn(
      // The orchestrator's data directory: SQLite's, or on PostgreSQL the local scratch directory (nothing is read there).
      { db: store, artifacts: on.artifacts, dataDir: orchestrator.deps.dataDir, actor: actorOf(user) },
      orchestrator,
      input,
    );
    const log = (s: string) => (values.json ? process.stderr : process.stdout).write(`${s}\n`);
    if (out.branchRunId !== undefined) {
      log(`rollback ${out.id}: branch run ${out.branchRunId} from checkpoint ${out.fromCheckpointId}; training it here`);
      await orchestrator.waitFor(out.branchRunId);
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
      branch: out.branchRunId === undefined ? null : await runResultOn(store, out.branchRunId),
    };
    if (values.json) process.stdout.write(`${JSON.stringify(shown)}\n`);
    on.afterWrite();
    return 0;
  } finally {
    await on.close();
  }
}
