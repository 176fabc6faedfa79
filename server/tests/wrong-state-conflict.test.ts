/**
 * A well-formed request that the record's current state refuses is a conflict (tRPC CONFLICT, HTTP 409), not bad input:
 * cancelling, pausing or resuming a completed run, promoting a version whose checkpoint has no test evaluation;
 * registering, re-running or compressing a run still queued (created, not launched: nothing trains it here). The message names the state and what the action needs; nothing is recorded. A malformed request (a set
 * without a path, a fork without its parent) stays BAD_REQUEST. Through the tRPC procedures on SQLite and on
 * PostgreSQL; the route handlers' HTTP status and the tracking API's MLflow code for the same kind (wrong_state → 409;
 * INVALID_STATE, as that API's own state refusals) are read from their one mapping each.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { and, count, eq, isNull, ne } from "drizzle-orm";
import { asStore, reader, type Store } from "@/db/store";
import { users } from "@/db/schema";
import { DEMO_USERS } from "@/server/demo/seed";
import { createCaller } from "@/server/trpc/root";
import type { AnyArtifactStore } from "@/server/artifacts/async-store";
import type { SignedInActor } from "@/server/app-context/service-context";
import { createRunOnStore } from "@/server/runs/service";
import { actorOf } from "@/server/users/service";
import { DomainError } from "@/server/errors";
import { httpErrorOf } from "@/server/http/domain-error-status";
import { mlflowErrorOf } from "@/server/mlflow/errors";
import { createTestApp, irisConfig, type TestApp } from "./test-app";
import { describePg } from "./pg-test-env";
import { TEST_PEOPLE } from "./store-test-env";
import { usePgWebApp } from "./pg-web-app-fixture";

type Caller = ReturnType<typeof createCaller>;

/** Runs and events; the server's periodic ledger checkpoint (audit.checkpoint) may land at any moment and is not counted. */
async function counts(store: Store): Promise<{ runs: number; events: number }> {
  const t = store.tables;
  const [r] = await reader(store).select({ n: count() }).from(t.runs);
  const [e] = await reader(store).select({ n: count() }).from(t.auditEvents).where(ne(t.auditEvents.action, "audit.checkpoint"));
  return { runs: Number(r!.n), events: Number(e!.n) };
}

/** The epoch of a checkpoint of the run that the trainer did not evaluate on the test partition (it evaluates the best). */
async function unevaluatedEpoch(store: Store, runId: number): Promise<number> {
  const { checkpoints: ck, evaluations: ev } = store.tables;
  const [found] = await reader(store)
    .select({ epoch: ck.epoch })
    .from(ck)
    .leftJoin(ev, eq(ev.checkpointId, ck.id))
    .where(and(eq(ck.runId, runId), isNull(ev.id)))
    .limit(1);
  if (!found) throw new Error(`every checkpoint of run ${runId} has an evaluation`);
  return found.epoch;
}

async function refusal(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (err) {
    return { code: (err as { code?: string }).code ?? "none", message: (err as Error).message };
  }
  throw new Error("the request was accepted");
}

/** The same cases on either store; `completed` is a trained run of two epochs. */
async function wrongStatesAreConflicts(
  ctx: { store: Store; artifacts: AnyArtifactStore; actor: SignedInActor },
  engineer: Caller,
  experimentId: number,
  completed: number,
) {
  const { store } = ctx;
  const queued = (
    await createRunOnStore(
      { db: store, artifacts: ctx.artifacts, actor: ctx.actor },
      { experimentId, config: irisConfig({ epochs: 1 }), rationale: "recorded, not launched" },
    )
  ).id;
  const before = await counts(store);
  expect(await refusal(engineer.models.register({ runId: queued, modelName: "wrong-state" }))).toEqual({
    code: "CONFLICT",
    message: `run ${queued} is queued: only checkpoints of completed runs can be registered`,
  });
  expect(await refusal(engineer.runs.rerun({ runId: queued, rationale: "again" }))).toEqual({
    code: "CONFLICT",
    message: `run ${queued} is queued: only a completed, failed, cancelled run can be re-run (its piloting path must be complete)`,
  });
  expect(await refusal(engineer.runs.compress({ runId: queued, method: "float16", rationale: "smaller" }))).toEqual({
    code: "CONFLICT",
    message: `run ${queued} is queued: it has not written its best checkpoint yet; compress it once it has`,
  });
  expect(await refusal(engineer.runs.cancel({ id: completed, reason: "not needed any more" }))).toEqual({
    code: "CONFLICT",
    message: `run ${completed} is completed; only a queued, running, paused or interrupted run can be cancelled`,
  });
  expect(await refusal(engineer.runs.pilot.request({ runId: completed, kind: "pause", rationale: "too late" }))).toEqual({
    code: "CONFLICT",
    message: `run ${completed} is completed: pause needs a run that is queued or running`,
  });
  expect(await refusal(engineer.runs.resumeInterrupted({ id: completed }))).toEqual({
    code: "CONFLICT",
    message: `run ${completed} is completed; only an interrupted run can be resumed this way`,
  });
  const epoch = await unevaluatedEpoch(store, completed);
  const { version } = await engineer.models.register({ runId: completed, modelName: "wrong-state", checkpoint: { epoch } });
  const afterRegister = await counts(store);
  const promotion = await refusal(
    engineer.models.requestPromotion({ modelName: "wrong-state", version, rationale: "ship it", acknowledgeMissingDocumentation: true }),
  );
  expect(promotion.code).toBe("CONFLICT");
  expect(promotion.message).toMatch(/^version 1 of "wrong-state" cannot be promoted: .* has no evaluation on the test partition/);
  // Malformed requests stay bad input.
  expect(await refusal(engineer.runs.pilot.request({ runId: completed, kind: "set", rationale: "nothing named" }))).toEqual({
    code: "BAD_REQUEST",
    message: "set: name at least one path to change (PATH=VALUE)",
  });
  expect(
    (await refusal(engineer.runs.create({ experimentId, config: irisConfig({ epochs: 1 }), rationale: "x", origin: "fork" }))).code,
  ).toBe("BAD_REQUEST");
  expect(await counts(store)).toEqual(afterRegister);
  expect(afterRegister.runs).toBe(before.runs);
}

describe("[wrong state] a request the record's state refuses is CONFLICT, on SQLite", () => {
  let app: TestApp;
  beforeAll(() => {
    app = createTestApp({ backend: "cpu" });
  });
  afterAll(() => app.close());

  it("cancel, pause, resume a completed run, promote an unevaluated version, register, re-run, compress a queued run: CONFLICT", async () => {
    const engineer = app.as("engineer");
    const { id } = await engineer.runs.create({ experimentId: app.experimentId, config: irisConfig({ epochs: 2 }), rationale: "r" });
    await app.orchestrator.waitFor(id);
    const engineerEmail = DEMO_USERS.find((u) => u.role === "engineer")!.email;
    const actor = actorOf(app.db.select().from(users).where(eq(users.email, engineerEmail)).get()!);
    await wrongStatesAreConflicts({ store: asStore(app.db), artifacts: app.artifacts, actor }, engineer, app.experimentId, id);
  }, 120_000);

  it("the route handlers answer 409 and the tracking API INVALID_STATE for the same kind; bad input stays 400", () => {
    const wrong = new DomainError("wrong_state", "run 1 is completed; only a queued run can be cancelled");
    expect(httpErrorOf(wrong)).toMatchObject({ status: 409, message: wrong.message });
    expect(mlflowErrorOf(wrong)).toEqual({ status: 400, body: { error_code: "INVALID_STATE", message: wrong.message } });
    expect(httpErrorOf(new DomainError("invalid_input", "x")).status).toBe(400);
    expect(mlflowErrorOf(new DomainError("invalid_input", "x")).body.error_code).toBe("INVALID_PARAMETER_VALUE");
    expect(mlflowErrorOf(new DomainError("conflict", "x")).body.error_code).toBe("RESOURCE_ALREADY_EXISTS");
  });
});

const AT = "2026-12-05T17:40:00.000Z";

describePg("[wrong state] a request the record's state refuses is CONFLICT, on PostgreSQL", () => {
  const web = usePgWebApp("wrong-state-pg", { at: AT });
  const store = web.store;

  it("cancel, pause, resume a completed run, promote an unevaluated version, register, re-run, compress a queued run: CONFLICT", async () => {
    const { users } = store().tables;
    const [user] = await reader(store()).select().from(users).where(eq(users.id, TEST_PEOPLE.engineer.id));
    const engineer = createCaller({ services: web.app(), user: actorOf(user!), sessionToken: undefined });
    const project = await engineer.projects.create({ name: "Wrong states" });
    const experimentId = (await engineer.projects.createExperiment({ projectId: project.id, name: "iris" })).id;
    const { id } = await engineer.runs.create({ experimentId, config: irisConfig({ epochs: 2 }), rationale: "r" });
    const deadline = Date.now() + 120_000;
    while ((await engineer.runs.get({ id })).status !== "completed") {
      if (Date.now() > deadline) throw new Error(`run ${id} did not complete`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await wrongStatesAreConflicts({ store: store(), artifacts: web.app().artifacts, actor: actorOf(user!) }, engineer, experimentId, id);
  }, 180_000);
});
