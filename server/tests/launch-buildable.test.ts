/**
 * runs.create refuses a config whose model cannot be built for its dataset (8×8×1 digits straight into a dense layer:
 * the head gets a 3-D input) with the builder's reason, before anything is recorded: no run row, no audit event. The
 * check is the size estimate's model build, in the estimate worker. A new run and a fork of a trained run, on SQLite and
 * on PostgreSQL; the same config with a flatten first launches. (Events are counted without the server's periodic
 * audit.checkpoint, which is not the launch's.)
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { count, eq, ne } from "drizzle-orm";
import { auditEvents, runs } from "@/db/schema";
import { reader } from "@/db/store";
import { createCaller } from "@/server/trpc/root";
import { actorOf } from "@/server/users/service";
import type { TrainingConfigInput } from "@/contracts/training-config";
import { createTestApp, irisConfig, type TestApp } from "./test-app";
import { describePg } from "./pg-test-env";
import { TEST_PEOPLE } from "./store-test-env";
import { usePgWebApp } from "./pg-web-app-fixture";

const REFUSAL = /cannot launch this configuration: the output head needs a flat input .*add a flatten/;

/** Digits (8×8×1 images) with the given layers, one epoch. */
function digitsConfig(layers: TrainingConfigInput["model"]["layers"]): TrainingConfigInput {
  const base = irisConfig({ epochs: 1 });
  return { ...base, data: { ...base.data, dataset: { builtin: "digits" } }, model: { layers } };
}
const DENSE_ONLY = [{ type: "dense" as const, units: 8, activation: "relu" as const }];
const FLATTEN_THEN_DENSE = [{ type: "flatten" as const }, ...DENSE_ONLY];

/** Events of the launch; the server's periodic ledger checkpoint (audit.checkpoint) may land at any moment. */
const NOT_A_CHECKPOINT = ne(auditEvents.action, "audit.checkpoint");

type Caller = ReturnType<typeof createCaller>;
type Counts = () => Promise<{ runs: number; events: number }>;

/** The same cases on either store. */
async function refusesThenLaunches(engineer: Caller, experimentId: number, counts: Counts, waitFor: (id: number) => Promise<void>) {
  const before = await counts();
  await expect(
    engineer.runs.create({ experimentId, config: digitsConfig(DENSE_ONLY), rationale: "digits into a dense layer" }),
  ).rejects.toThrow(REFUSAL);
  expect(await counts()).toEqual(before);

  const { id } = await engineer.runs.create({ experimentId, config: digitsConfig(FLATTEN_THEN_DENSE), rationale: "flattened first" });
  expect(id).toBeGreaterThan(0);
  await waitFor(id);
  const afterLaunch = await counts();
  expect(afterLaunch.runs).toBe(before.runs + 1);

  // A fork that drops the flatten is refused the same way, and records nothing either.
  await expect(
    engineer.runs.create({
      experimentId,
      config: digitsConfig(DENSE_ONLY),
      rationale: "fork without the flatten",
      origin: "fork",
      parentRunId: id,
    }),
  ).rejects.toThrow(REFUSAL);
  expect(await counts()).toEqual(afterLaunch);
}

describe("[runs.create] refuses a model that cannot be built, on SQLite", () => {
  let app: TestApp;
  beforeAll(() => {
    app = createTestApp({ backend: "cpu" });
  });
  afterAll(() => app.close());

  it("refuses digits into a dense layer with the builder's reason and records nothing; with a flatten it launches", async () => {
    const counts: Counts = async () => ({
      runs: app.db.select({ n: count() }).from(runs).get()!.n,
      events: app.db.select({ n: count() }).from(auditEvents).where(NOT_A_CHECKPOINT).get()!.n,
    });
    await refusesThenLaunches(app.as("engineer"), app.experimentId, counts, (id) => app.orchestrator.waitFor(id));
  }, 120_000);
});

const AT = "2026-12-05T15:00:00.000Z";

describePg("[runs.create] refuses a model that cannot be built, on PostgreSQL", () => {
  const web = usePgWebApp("launch-buildable-pg", { at: AT });
  const store = web.store;

  it("refuses digits into a dense layer with the builder's reason and records nothing; with a flatten it launches", async () => {
    const { users } = store().tables;
    const [user] = await reader(store()).select().from(users).where(eq(users.id, TEST_PEOPLE.engineer.id));
    const engineer = createCaller({ services: web.app(), user: actorOf(user!), sessionToken: undefined });
    const project = await engineer.projects.create({ name: "Buildable launches" });
    const experimentId = (await engineer.projects.createExperiment({ projectId: project.id, name: "digits" })).id;
    const t = store().tables;
    const counts: Counts = async () => {
      const [r] = await reader(store()).select({ n: count() }).from(t.runs);
      const [e] = await reader(store()).select({ n: count() }).from(t.auditEvents).where(ne(t.auditEvents.action, "audit.checkpoint"));
      return { runs: Number(r!.n), events: Number(e!.n) };
    };
    const waitFor = async (id: number) => {
      const deadline = Date.now() + 120_000;
      while (!["completed", "failed", "cancelled"].includes((await engineer.runs.get({ id })).status)) {
        if (Date.now() > deadline) throw new Error(`run ${id} did not finish`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    await refusesThenLaunches(engineer, experimentId, counts, waitFor);
  }, 180_000);
});
