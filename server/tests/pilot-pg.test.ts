/**
 * Piloting on the store (issue 16, server/runs/pilot.ts): requests of each kind in allowed and refused run states,
 * a wrong role, invalid changes, cancellations by the requester and by another engineer, and the orchestrator's apply
 * and reject give the same run_interventions and decisions rows, refusals and ledger rows (seq, action, payload, chain
 * hash, under one fixed clock) on SQLite and PostgreSQL. On PostgreSQL, through two pools, where a check precedes a
 * write (inside the transaction, under the ledger lock): two pauses of one run requested at once leave one pending;
 * one pending intervention cancelled and applied at once makes exactly one transition.
 */
import { describe, expect, it } from "vitest";
import { and, eq } from "drizzle-orm";
import { exec, pgStore, reader, rows, transact, type Store } from "@/db/store";
import { canonicalJson } from "@/contracts/canonical";
import { trainingConfigSchema } from "@/contracts/training-config";
import type { SignedInActor } from "@/server/app-context/service-context";
import { createExperiment, createProject } from "@/server/projects/service";
import {
  applyInterventionOn,
  cancelInterventionOn,
  rejectInterventionOn,
  requestInterventionOn,
  type RequestInterventionInput,
} from "@/server/runs/pilot";
import { describePg } from "./pg-test-env";
import { fixedDateForEachTest, refusal, seedPeople, sqliteForSuite, TEST_PEOPLE, twoPgServersForSuite } from "./store-test-env";
import { irisConfig } from "./test-app";

const AT = "2026-12-05T02:50:00.000Z";
const { engineer, reviewer } = TEST_PEOPLE;
/** A second engineer (id 4), to cancel someone else's request. */
const other: SignedInActor = { id: 4, name: "Oli Other", role: "engineer", email: "oli@example.com" };

const STATES = ["running", "paused", "completed", "queued", "failed"] as const;

/** People, an experiment, one run per state (plus a compression and a run logged by a script), checkpoints. */
async function seed(store: Store) {
  await seedPeople(store, { at: AT, passwordHash: "x" });
  const { users, runs, checkpoints, decisions } = store.tables;
  await transact(store, function* (tx) {
    yield* exec(
      tx
        .insert(users)
        .values({ id: other.id, email: other.email, name: other.name, role: "engineer", passwordHash: "x", createdAt: AT })
        .onConflictDoNothing(),
    );
  });
  const project = await createProject({ db: store, actor: engineer }, { name: "Pilot" });
  const experiment = await createExperiment({ db: store, actor: engineer }, { projectId: project.id, name: "iris" });
  const configJson = canonicalJson(trainingConfigSchema.parse(irisConfig({ epochs: 4 })));
  const run = (status: string, origin: string) => ({
    experimentId: experiment.id,
    name: `${origin}-${status}`,
    status: status as "running",
    configJson,
    configSha256: "0".repeat(64),
    seed: 1,
    origin: origin as "new",
    createdBy: engineer.id,
    createdAt: AT,
  });
  return transact(store, function* (tx) {
    const ids: Record<string, number> = {};
    for (const s of STATES) ids[s] = (yield* rows(tx.insert(runs).values(run(s, "new")).returning({ id: runs.id })))[0]!.id;
    ids.compress = (yield* rows(tx.insert(runs).values(run("running", "compress")).returning({ id: runs.id })))[0]!.id;
    ids.api = (yield* rows(tx.insert(runs).values(run("running", "api")).returning({ id: runs.id })))[0]!.id;
    yield* exec(
      tx.insert(decisions).values({
        runId: ids.api!,
        kind: "param",
        path: "lr",
        oldValueJson: null,
        newValueJson: canonicalJson("0.1"),
        rationale: "logged by the script",
        correctsDecisionId: null,
        authorId: engineer.id,
        createdAt: AT,
      }),
    );
    const cks: Record<string, number> = {};
    for (const [name, runId, epoch] of [
      ["running1", ids.running!, 1],
      ["running2", ids.running!, 2],
      ["paused1", ids.paused!, 1],
      ["completed2", ids.completed!, 2],
    ] as const)
      cks[name] = (yield* rows(
        tx
          .insert(checkpoints)
          .values({ runId, epoch, step: epoch * 7, sha256: "a".repeat(64), bytes: 1, metricsJson: "{}", createdAt: AT })
          .returning({ id: checkpoints.id }),
      ))[0]!.id;
    return { runs: ids, cks };
  });
}

async function scenario(store: Store) {
  const { runs: r, cks } = await seed(store);
  const as = (actor: SignedInActor) => ({ db: store, actor });
  const ask = (actor: SignedInActor, input: Omit<RequestInterventionInput, "rationale">) =>
    requestInterventionOn(as(actor), { rationale: `because ${input.kind}`, ...input });
  const ok: Record<string, { id: number }> = {};
  const refused: Record<string, unknown> = {};
  const attempt = async (name: string, p: Promise<{ id: number }>, expectOk: boolean) => {
    if (expectOk) ok[name] = await p;
    else refused[name] = await refusal(p);
  };

  await attempt("pause running", ask(engineer, { runId: r.running!, kind: "pause" }), true);
  await attempt("pause running again", ask(engineer, { runId: r.running!, kind: "pause" }), false);
  await attempt("pause paused", ask(engineer, { runId: r.paused!, kind: "pause" }), false);
  await attempt("pause queued", ask(engineer, { runId: r.queued!, kind: "pause" }), true);
  await attempt("resume paused", ask(engineer, { runId: r.paused!, kind: "resume" }), true);
  await attempt("resume running", ask(engineer, { runId: r.running!, kind: "resume" }), false);
  await attempt("stop queued", ask(engineer, { runId: r.queued!, kind: "stop" }), true);
  await attempt("stop failed", ask(engineer, { runId: r.failed!, kind: "stop" }), false);
  await attempt("stop completed", ask(engineer, { runId: r.completed!, kind: "stop" }), false);
  await attempt("set running", ask(engineer, { runId: r.running!, kind: "set", set: { "training.learningRate": 0.01 } }), true);
  await attempt("set paused", ask(other, { runId: r.paused!, kind: "set", set: { "training.epochs": 6 } }), true);
  await attempt("set failed", ask(engineer, { runId: r.failed!, kind: "set", set: { "training.epochs": 6 } }), false);
  await attempt("set unpilotable path", ask(engineer, { runId: r.running!, kind: "set", set: { "model.layers": [] } }), false);
  await attempt("set invalid value", ask(engineer, { runId: r.running!, kind: "set", set: { "training.learningRate": -1 } }), false);
  await attempt("set same value", ask(engineer, { runId: r.running!, kind: "set", set: { "training.epochs": 4 } }), false);
  await attempt("set nothing", ask(engineer, { runId: r.running!, kind: "set" }), false);
  await attempt("pause with a set", ask(engineer, { runId: r.queued!, kind: "pause", set: { "training.epochs": 6 } }), false);
  await attempt(
    "rollback completed",
    ask(engineer, { runId: r.completed!, kind: "rollback", fromCheckpointId: cks.completed2!, set: { "training.epochs": 6 } }),
    true,
  );
  await attempt("rollback without checkpoint", ask(engineer, { runId: r.running!, kind: "rollback" }), false);
  await attempt(
    "rollback other run's checkpoint",
    ask(engineer, { runId: r.running!, kind: "rollback", fromCheckpointId: cks.paused1! }),
    false,
  );
  await attempt("rollback queued", ask(engineer, { runId: r.queued!, kind: "rollback", fromCheckpointId: cks.running1! }), false);
  await attempt(
    "rollback too short",
    ask(engineer, { runId: r.completed!, kind: "rollback", fromCheckpointId: cks.completed2!, set: { "training.epochs": 2 } }),
    false,
  );
  await attempt("pause by a reviewer", ask(reviewer, { runId: r.running!, kind: "stop" }), false);
  await attempt("pause a compression", ask(engineer, { runId: r.compress!, kind: "pause" }), false);
  await attempt("rollback a script's run", ask(engineer, { runId: r.api!, kind: "rollback", fromCheckpointId: cks.running1! }), false);
  await attempt("set a script's param", ask(engineer, { runId: r.api!, kind: "set", set: { lr: 0.05 } }), true);
  await attempt("set a script's unknown param", ask(engineer, { runId: r.api!, kind: "set", set: { momentum: 0.9 } }), false);
  await attempt("set a script's param again", ask(engineer, { runId: r.api!, kind: "set", set: { lr: 0.02 } }), false);
  await attempt("pause an unknown run", ask(engineer, { runId: 999, kind: "pause" }), false);

  const cancel = (actor: SignedInActor, id: number, rationale = "changed my mind") =>
    cancelInterventionOn(as(actor), { interventionId: id, rationale });
  await attempt("cancel by the requester", cancel(engineer, ok["stop queued"]!.id), true);
  await attempt("cancel by another engineer", cancel(other, ok["pause queued"]!.id, "the run is fine"), true);
  await attempt("cancel by a reviewer", cancel(reviewer, ok["set running"]!.id), false);
  await attempt("cancel twice", cancel(engineer, ok["stop queued"]!.id), false);
  await attempt("cancel without rationale", cancel(engineer, ok["set running"]!.id, " "), false);
  await attempt("cancel unknown", cancel(engineer, 999), false);

  const apply = (id: number, epoch: number, checkpointId: number) =>
    applyInterventionOn({ db: store }, { interventionId: id, epoch, step: epoch * 7, checkpointId }).then((a) => ({
      id: a.intervention.id,
      decisionId: a.decision.id,
    }));
  await attempt("apply set at epoch 1", apply(ok["set running"]!.id, 1, cks.running1!), true);
  await attempt("apply pause at the wrong epoch", apply(ok["pause running"]!.id, 1, cks.running2!), false);
  await attempt("apply pause at another run's checkpoint", apply(ok["pause running"]!.id, 1, cks.paused1!), false);
  await attempt("apply pause at epoch 2", apply(ok["pause running"]!.id, 2, cks.running2!), true);
  await attempt("apply it again", apply(ok["pause running"]!.id, 2, cks.running2!), false);
  await attempt("apply a cancelled one", apply(ok["stop queued"]!.id, 1, cks.running1!), false);
  // After the set took effect, its old value is the new effective one.
  await attempt("set after apply", ask(engineer, { runId: r.running!, kind: "set", set: { "training.learningRate": 0.02 } }), true);

  const reject = (id: number, reason: string) => rejectInterventionOn({ db: store }, { interventionId: id, reason });
  await attempt("reject resume", reject(ok["resume paused"]!.id, "the run ended first"), true);
  await attempt("reject applied", reject(ok["pause running"]!.id, "too late"), false);
  await attempt("reject without reason", reject(ok["set paused"]!.id, "  "), false);

  const { runInterventions, decisions, runs, auditEvents } = store.tables;
  const read = reader(store);
  return {
    ok,
    refused,
    interventions: await read.select().from(runInterventions).orderBy(runInterventions.id),
    decisions: await read.select().from(decisions).orderBy(decisions.id),
    runs: await read.select({ id: runs.id, status: runs.status }).from(runs).orderBy(runs.id),
    ledger: await read.select().from(auditEvents).orderBy(auditEvents.seq),
  };
}

type Outcome = Awaited<ReturnType<typeof scenario>>;
const outcomes: Partial<Record<Store["dialect"], Outcome>> = {};

function behaviourCases(storeOf: () => Store): void {
  fixedDateForEachTest(AT);
  it("requests, cancels, applies and rejects interventions, refuses what it must, and writes the ledger", async () => {
    const store = storeOf();
    const outcome = await scenario(store);
    outcomes[store.dialect] = outcome;
    expect(Object.keys(outcome.ok)).toHaveLength(14);
    expect(outcome.refused["pause running again"]).toMatchObject({ kind: "conflict" });
    expect(outcome.refused["pause paused"]).toMatchObject({ kind: "wrong_state" });
    expect(outcome.refused["pause by a reviewer"]).toMatchObject({ kind: "forbidden" });
    expect(outcome.refused["cancel twice"]).toMatchObject({ kind: "wrong_state" });
    expect(outcome.refused["apply it again"]).toMatchObject({ kind: "wrong_state" });
    const byId = new Map(outcome.interventions.map((i) => [i.id, i]));
    expect(byId.get(outcome.ok["pause running"]!.id)).toMatchObject({
      status: "applied",
      appliedAtEpoch: 2,
      checkpointId: expect.any(Number),
    });
    expect(byId.get(outcome.ok["cancel by another engineer"]!.id)).toMatchObject({ status: "cancelled", closedBy: other.id });
    expect(byId.get(outcome.ok["reject resume"]!.id)).toMatchObject({ status: "rejected", closedBy: null });
    expect(outcome.runs.find((x) => x.status === "paused" && x.id === byId.get(outcome.ok["pause running"]!.id)!.runId)).toBeDefined();
    expect(outcome.ledger.map((e) => e.action).filter((a) => a.startsWith("run.intervention"))).toHaveLength(14);
  });
}

describe("piloting on SQLite", () => {
  const sqlite = sqliteForSuite("rl-pilot-pg-");
  behaviourCases(() => sqlite.store());
});

describePg("piloting on PostgreSQL", () => {
  const pg = twoPgServersForSuite();
  behaviourCases(() => pgStore(pg.a()));

  it("gives the same rows, refusals and ledger rows (payloads, seq, chain hashes) as SQLite", () => {
    expect(outcomes.sqlite).toBeDefined();
    expect(outcomes.pg).toEqual(outcomes.sqlite);
  });

  it("two servers at once: 12 pauses of one run leave one pending; a pending intervention cancelled and applied at once makes one transition", async () => {
    const servers = pg.stores();
    const { runs, checkpoints, runInterventions, auditEvents } = servers[0].tables;
    const read = reader(servers[0]);
    const [runId] = (await read.select({ id: runs.id }).from(runs).where(eq(runs.status, "queued")).limit(1)).map((x) => x.id);
    // The queued run's pause was cancelled in the scenario: nothing of its kind is pending.
    const pauses = await Promise.allSettled(
      Array.from({ length: 12 }, (_, i) =>
        requestInterventionOn({ db: servers[i % 2]!, actor: engineer }, { runId: runId!, kind: "pause", rationale: `pause ${i}` }),
      ),
    );
    expect(pauses.filter((p) => p.status === "fulfilled")).toHaveLength(1);
    const pending = await read
      .select()
      .from(runInterventions)
      .where(and(eq(runInterventions.runId, runId!), eq(runInterventions.status, "pending"), eq(runInterventions.kind, "pause")));
    expect(pending).toHaveLength(1);

    // A checkpoint of the queued run to apply at; then 8 rounds of one set cancelled and applied at once.
    const [ck] = await transact(servers[0], (tx) =>
      rows(
        tx
          .insert(checkpoints)
          .values({ runId: runId!, epoch: 1, step: 7, sha256: "b".repeat(64), bytes: 1, metricsJson: "{}", createdAt: AT })
          .returning({ id: checkpoints.id }),
      ),
    );
    for (let round = 0; round < 8; round++) {
      const req = await requestInterventionOn(
        { db: servers[0], actor: engineer },
        { runId: runId!, kind: "set", set: { "training.learningRate": 0.001 * (round + 2) }, rationale: `round ${round}` },
      );
      const [cancelled, applied] = await Promise.allSettled([
        cancelInterventionOn({ db: servers[0], actor: engineer }, { interventionId: req.id, rationale: "withdrawn" }),
        applyInterventionOn({ db: servers[1] }, { interventionId: req.id, epoch: 1, step: 7, checkpointId: ck!.id }),
      ]);
      const fulfilled = [cancelled, applied].filter((p) => p.status === "fulfilled");
      expect(fulfilled).toHaveLength(1);
      const loser = [cancelled, applied].find((p) => p.status === "rejected") as PromiseRejectedResult;
      expect(String(loser.reason)).toMatch(/is already (cancelled|applied)/);
      const events = await read
        .select({ action: auditEvents.action })
        .from(auditEvents)
        .where(eq(auditEvents.entityId, String(req.id)));
      expect(events.map((e) => e.action).sort()).toEqual(
        ["run.interventionRequested", cancelled.status === "fulfilled" ? "run.interventionCancelled" : "run.interventionApplied"].sort(),
      );
    }
    const seqs = (await read.select({ seq: auditEvents.seq }).from(auditEvents).orderBy(auditEvents.seq)).map((e) => e.seq);
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));
  });
});
