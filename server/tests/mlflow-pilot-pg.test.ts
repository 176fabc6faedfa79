/**
 * The tracking API's pilot extension on the store (issue 16, server/mlflow/pilot.ts): a script's run logged through
 * the MLflow API (dispatchMlflow), piloted by an engineer (requestInterventionOn), and followed by the script through
 * /api/2.0/runledger (dispatchRunledger: pending-interventions, ack-intervention, reject-intervention) gives the same
 * answers, run_interventions, decisions and runs rows and ledger rows (seq, action, payload, chain hash, under one
 * fixed clock) on SQLite and on PostgreSQL: a pause, a resume and a stop acknowledged at steps, a param change
 * acknowledged and one rejected with the script's reason, and the refusals (an auditor's token, a missing field, a
 * step before an earlier one, an intervention already applied or of another run, an embedded run). The run's listing
 * with effects (listInterventionsWithEffectsOn) is the same on both stores and equals the synchronous form on SQLite.
 * On PostgreSQL, through two pools (two web servers), where a check precedes a write (inside the transaction, under
 * the ledger lock): one pending intervention acknowledged by one server while an engineer withdraws it on the other
 * makes exactly one transition; acknowledged by both at once, one answer is INVALID_STATE; the ledger stays gapless.
 */
import { describe, expect, it, vi } from "vitest";
import { eq } from "drizzle-orm";
import { exec, pgStore, reader, transact, type Store } from "@/db/store";
import type { Db } from "@/db/client";
import { sha256Hex } from "@/contracts/canonical";
import { dispatchMlflow, type MlflowServices } from "@/server/mlflow/dispatch";
import { dispatchRunledger } from "@/server/mlflow/runledger-dispatch";
import type { AnyAppServices } from "@/server/app-context/app-services";
import { cancelInterventionOn, requestInterventionOn, type RequestInterventionInput } from "@/server/runs/pilot";
import { listInterventionsWithEffects, listInterventionsWithEffectsOn } from "@/server/runs/pilot-effects";
import { getRun } from "@/server/runs/queries";
import { scriptSettings } from "@/server/runs/pilot-queries";
import { describePg } from "./pg-test-env";
import { fixedDateForEachTest, seedPeople, sqliteForSuite, TEST_PEOPLE, twoPgServersForSuite } from "./store-test-env";

vi.mock("server-only", () => ({}));

const AT = "2026-12-05T07:50:00.000Z";
const TOKENS = {
  engineer: "rlt_engineer-token-for-the-pilot-suite",
  auditor: "rlt_auditor-token-for-the-pilot-suite",
} as const;
type Who = keyof typeof TOKENS;
type Answer = { status: number; body: unknown };
const { engineer } = TEST_PEOPLE;

async function seedPeopleAndTokens(store: Store): Promise<void> {
  await seedPeople(store, { at: AT, passwordHash: "x" });
  const { apiTokens } = store.tables;
  await transact(store, function* (tx) {
    for (const [i, [who, token]] of Object.entries(TOKENS).entries())
      yield* exec(
        tx
          .insert(apiTokens)
          .values({
            id: i + 1,
            userId: TEST_PEOPLE[who as Who].id,
            name: who,
            tokenSha256: sha256Hex(token),
            prefix: token.slice(0, 8),
            createdAt: AT,
          })
          .onConflictDoNothing(),
      );
  });
}

/** The MLflow API and its Runledger extension as the routes call them, on `store`. */
function apiOn(store: Store) {
  const services = { db: store } as unknown as MlflowServices; // the endpoints read only db; the caller is the token's
  const call = async (
    dispatch: "mlflow" | "runledger",
    method: "GET" | "POST",
    path: string,
    body: Record<string, unknown> = {},
    who: Who = "engineer",
  ): Promise<Answer> => {
    const query = new URLSearchParams();
    if (method === "GET") for (const [k, v] of Object.entries(body)) query.append(k, String(v));
    const req = {
      method,
      path,
      query,
      authorization: `Bearer ${TOKENS[who]}`,
      bodyText: method === "GET" ? null : JSON.stringify(body),
    };
    const answer =
      dispatch === "mlflow" ? await dispatchMlflow(services, req) : await dispatchRunledger(services as unknown as AnyAppServices, req);
    return { status: answer.status, body: answer.body };
  };
  return {
    mlflow: (path: string, body: Record<string, unknown> = {}) => call("mlflow", "POST", path, body),
    pending: (run_id: string, who: Who = "engineer") => call("runledger", "GET", "runs/pending-interventions", { run_id }, who),
    ack: (body: Record<string, unknown>, who: Who = "engineer") => call("runledger", "POST", "runs/ack-intervention", body, who),
    reject: (body: Record<string, unknown>, who: Who = "engineer") => call("runledger", "POST", "runs/reject-intervention", body, who),
  };
}

const ask = (store: Store, input: Omit<RequestInterventionInput, "rationale">) =>
  requestInterventionOn({ db: store, actor: engineer }, { rationale: `because ${input.kind}`, ...input });

/** A script's run with params and a few epochs of metrics, logged through the MLflow API. */
async function scriptRun(api: ReturnType<typeof apiOn>, name: string): Promise<string> {
  const exp = (await api.mlflow("experiments/create", { name })).body as { experiment_id: string };
  const run = (await api.mlflow("runs/create", { experiment_id: exp.experiment_id, run_name: name, start_time: Date.parse(AT) })).body as {
    run: { info: { run_id: string } };
  };
  const run_id = run.run.info.run_id;
  await api.mlflow("runs/log-parameter", { run_id, key: "lr", value: "0.1" });
  await api.mlflow("runs/log-parameter", { run_id, key: "momentum", value: "0.9" });
  for (let step = 1; step <= 4; step++)
    await api.mlflow("runs/log-batch", {
      run_id,
      metrics: [
        { key: "loss", value: 1 / step, timestamp: Date.parse(AT), step },
        { key: "val_loss", value: 1.5 / step, timestamp: Date.parse(AT), step },
      ],
    });
  return run_id;
}

async function scenario(store: Store) {
  await seedPeopleAndTokens(store);
  const api = apiOn(store);
  const answers: Record<string, Answer> = {};
  const note = async (name: string, a: Promise<Answer>) => (answers[name] = await a);

  const run_id = await scriptRun(api, "followed");
  const runId = Number(run_id);
  const pause = await ask(store, { runId, kind: "pause" });
  const set = await ask(store, { runId, kind: "set", set: { lr: 0.05 } });
  const momentum = await ask(store, { runId, kind: "set", set: { momentum: 0.5 } });
  await note("pending", api.pending(run_id));
  await note("pending as auditor", api.pending(run_id, "auditor"));
  await note("pending without run", api.pending(""));
  await note("ack as auditor", api.ack({ run_id, intervention_id: String(pause.id), step: 1 }, "auditor"));
  await note("ack without step", api.ack({ run_id, intervention_id: String(pause.id) }));
  await note("ack unknown", api.ack({ run_id, intervention_id: "999", step: 1 }));
  await note("ack pause at 2", api.ack({ run_id, intervention_id: String(pause.id), step: 2, epoch: 2 }));
  await note("ack pause again", api.ack({ run_id, intervention_id: String(pause.id), step: 2 }));
  await note("ack set before the pause's step", api.ack({ run_id, intervention_id: String(set.id), step: 1 }));
  await note("ack set at 2", api.ack({ run_id, intervention_id: String(set.id), step: 2, epoch: 2 }));
  await note("reject without reason", api.reject({ run_id, intervention_id: String(momentum.id), reason: " " }));
  await note("reject as auditor", api.reject({ run_id, intervention_id: String(momentum.id), reason: "no" }, "auditor"));
  await note("reject momentum", api.reject({ run_id, intervention_id: String(momentum.id), reason: "the optimizer is fixed" }));
  await note("reject it again", api.reject({ run_id, intervention_id: String(momentum.id), reason: "again" }));
  const resume = await ask(store, { runId, kind: "resume" });
  await note("ack resume at 3", api.ack({ run_id, intervention_id: String(resume.id), step: 3, epoch: 3 }));
  const other = await scriptRun(api, "other");
  await note("ack another run's intervention", api.ack({ run_id: other, intervention_id: String(resume.id), step: 3 }));
  const stop = await ask(store, { runId, kind: "stop" });
  await ask(store, { runId, kind: "set", set: { lr: 0.01 } });
  await note("ack stop at 4", api.ack({ run_id, intervention_id: String(stop.id), step: 4, epoch: 4 }));
  await note("pending after the stop", api.pending(run_id));

  const { runInterventions, decisions, runs, auditEvents } = store.tables;
  const read = reader(store);
  return {
    answers,
    listing: await listInterventionsWithEffectsOn(store, runId),
    // The run page's view of the script's settings (runs.get): logged values and the changes that took effect.
    settings: (await getRun(store, runId)).scriptSettings,
    interventions: await read.select().from(runInterventions).orderBy(runInterventions.id),
    decisions: await read.select().from(decisions).orderBy(decisions.id),
    runs: await read.select({ id: runs.id, status: runs.status, finishedAt: runs.finishedAt }).from(runs).orderBy(runs.id),
    ledger: await read.select().from(auditEvents).orderBy(auditEvents.seq),
    runId,
  };
}

type Outcome = Awaited<ReturnType<typeof scenario>>;
const outcomes: Partial<Record<Store["dialect"], Outcome>> = {};

function behaviourCases(storeOf: () => Store): void {
  fixedDateForEachTest(AT);
  it("a script acknowledges a pause, a change, a resume and a stop, rejects a change, and is refused what it must", async () => {
    const store = storeOf();
    const o = await scenario(store);
    outcomes[store.dialect] = o;
    const status = (name: string) => o.answers[name]!.status;
    const code = (name: string) => (o.answers[name]!.body as { error_code?: string }).error_code;
    expect((o.answers.pending!.body as { interventions: unknown[] }).interventions).toHaveLength(3);
    expect(status("pending as auditor")).toBe(200);
    expect([status("ack as auditor"), code("ack as auditor")]).toEqual([403, "PERMISSION_DENIED"]);
    expect(code("ack without step")).toBe("INVALID_PARAMETER_VALUE");
    expect(code("ack unknown")).toBe("RESOURCE_DOES_NOT_EXIST");
    expect(o.answers["ack pause at 2"]!.body).toMatchObject({ run_status: "paused", intervention: { applied_at_step: 2 } });
    expect(code("ack pause again")).toBe("INVALID_STATE");
    expect(code("ack set before the pause's step")).toBe("INVALID_PARAMETER_VALUE");
    expect(o.answers["ack set at 2"]!.body).toMatchObject({ intervention: { changes: [{ key: "lr", from: "0.1", to: "0.05" }] } });
    expect(code("reject without reason")).toBe("INVALID_PARAMETER_VALUE");
    expect(status("reject as auditor")).toBe(403);
    expect(o.answers["reject momentum"]!.body).toMatchObject({ intervention: { reason: "the optimizer is fixed" } });
    expect(code("reject it again")).toBe("INVALID_STATE");
    expect(o.answers["ack resume at 3"]!.body).toMatchObject({ run_status: "running" });
    expect(code("ack another run's intervention")).toBe("RESOURCE_DOES_NOT_EXIST");
    expect(o.answers["ack stop at 4"]!.body).toMatchObject({ run_status: "completed" });
    expect(o.answers["pending after the stop"]!.body).toMatchObject({ run_status: "completed", interventions: [] });
    // The set asked for after the stop was pending when the run ended: rejected by the server, with why.
    expect(o.interventions.map((i) => i.status)).toEqual(["applied", "applied", "rejected", "applied", "applied", "rejected"]);
    const actions = o.ledger
      .map((e) => e.action)
      .filter((a) => a.startsWith("run.intervention") || a === "run.start" || a === "run.complete");
    expect(actions).toEqual([
      "run.start",
      ...Array(3).fill("run.interventionRequested"),
      "run.interventionApplied",
      "run.interventionApplied",
      "run.interventionRejected",
      "run.interventionRequested",
      "run.interventionApplied",
      "run.start",
      "run.start",
      "run.interventionRequested",
      "run.interventionRequested",
      "run.interventionApplied",
      "run.interventionRejected",
      "run.complete",
    ]);
    // The listing: the applied pause's effect on val_loss (the watched metric of a script's run) after epoch 2.
    const pauseRow = o.listing.find((i) => i.kind === "pause")!;
    expect(pauseRow.effect).toEqual({
      metric: "val_loss",
      before: { epoch: 2, value: 0.75 },
      after: [
        { epoch: 3, value: 0.5 },
        { epoch: 4, value: 0.375 },
      ],
      delta: -0.375,
    });
  });
}

describe("the tracking API's pilot extension on SQLite", () => {
  const sqlite = sqliteForSuite("rl-mlflow-pilot-pg-");
  behaviourCases(() => sqlite.store());
  it("listInterventionsWithEffectsOn equals the synchronous listing", () => {
    const o = outcomes.sqlite!;
    expect(o.listing).toEqual(listInterventionsWithEffects(sqlite.db() as Db, o.runId));
    expect(o.settings).toEqual(scriptSettings(sqlite.db() as Db, o.runId));
    expect(o.settings?.map((s) => s.key)).toContain("lr");
  });
});

describePg("the tracking API's pilot extension on PostgreSQL", () => {
  const pg = twoPgServersForSuite();
  behaviourCases(() => pgStore(pg.a()));

  it("gives the same answers, rows, listing and ledger rows (payloads, seq, chain hashes) as SQLite", () => {
    expect(outcomes.sqlite).toBeDefined();
    expect(outcomes.pg).toEqual(outcomes.sqlite);
  });

  it("two servers at once: an acknowledgement against a withdrawal, and two acknowledgements, make one transition each", async () => {
    const [a, b] = pg.stores();
    const [apiA, apiB] = [apiOn(a), apiOn(b)];
    const run_id = await scriptRun(apiA, "raced");
    const runId = Number(run_id);
    const { runInterventions, auditEvents } = a.tables;
    const read = reader(a);
    for (let round = 0; round < 6; round++) {
      const req = await ask(a, { runId, kind: "set", set: { lr: 0.01 * (round + 2) } });
      const [acked, withdrawn] = await Promise.all([
        apiA.ack({ run_id, intervention_id: String(req.id), step: 2 + round }),
        cancelInterventionOn({ db: b, actor: engineer }, { interventionId: req.id, rationale: "withdrawn" }).then(
          () => true,
          (err: Error) => err.message,
        ),
      ]);
      const [row] = await read.select().from(runInterventions).where(eq(runInterventions.id, req.id));
      if (acked.status === 200) {
        expect(withdrawn).toMatch(/is already applied/);
        expect(row!.status).toBe("applied");
      } else {
        expect(withdrawn).toBe(true);
        expect(acked.body).toMatchObject({ error_code: "INVALID_STATE" });
        expect(row!.status).toBe("cancelled");
      }
    }
    for (let round = 0; round < 4; round++) {
      const req = await ask(a, { runId, kind: "set", set: { momentum: 0.1 * (round + 1) } });
      const answers = await Promise.all([apiA, apiB].map((api) => api.ack({ run_id, intervention_id: String(req.id), step: 20 + round })));
      expect(answers.map((x) => x.status).sort()).toEqual([200, 400]);
      const events = await read
        .select({ action: auditEvents.action })
        .from(auditEvents)
        .where(eq(auditEvents.entityId, String(req.id)));
      expect(events.map((e) => e.action).sort()).toEqual(["run.interventionApplied", "run.interventionRequested"]);
    }
    const seqs = (await read.select({ seq: auditEvents.seq }).from(auditEvents).orderBy(auditEvents.seq)).map((e) => e.seq);
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));
  });
});
