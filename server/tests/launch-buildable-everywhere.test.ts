/**
 * Every launch of a run config refuses a model that cannot be built for its dataset (8×8×1 digits straight into a dense
 * layer: the head gets a 3-D input) with the builder's reason, before anything is recorded, as runs.create does
 * (launch-buildable.test.ts): a re-run of a run that failed so (recorded before the check, or a sweep trial), a
 * distillation into a student whose layers do not fit, a sweep whose base config or one of whose dataset choices cannot
 * be built (its first trial can), and the CLI's `train` and `sweep`. On SQLite and on PostgreSQL; a re-run of a
 * buildable run still launches. (Events are counted without the server's periodic audit.checkpoint.)
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { count, eq, ne } from "drizzle-orm";
import { asStore, pgStore, reader, sqliteStore, type Store } from "@/db/store";
import { openDatabase } from "@/db/client";
import { openPgDatabase } from "@/db/pg-client";
import { users } from "@/db/schema";
import type { AnyArtifactStore } from "@/server/artifacts/async-store";
import { createCaller } from "@/server/trpc/root";
import { actorOf } from "@/server/users/service";
import { DEMO_USERS } from "@/server/demo/seed";
import { createRunOnStore } from "@/server/runs/service";
import type { SignedInActor } from "@/server/app-context/service-context";
import type { TrainingConfigInput } from "@/contracts/training-config";
import { createTestApp, irisConfig, type TestApp } from "./test-app";
import { createScratchPgDatabase, describePg, type ScratchPgDatabase } from "./pg-test-env";
import { TEST_PEOPLE } from "./store-test-env";
import { usePgWebApp } from "./pg-web-app-fixture";
import { runCli } from "./cli-process";

vi.mock("server-only", () => ({}));

const REFUSAL = /cannot launch this configuration: the output head needs a flat input .*add a flatten/;

/** Digits (8×8×1 images) with the given layers, one epoch. */
function digitsConfig(layers: TrainingConfigInput["model"]["layers"]): TrainingConfigInput {
  const base = irisConfig({ epochs: 1 });
  return { ...base, data: { ...base.data, dataset: { builtin: "digits" } }, model: { layers } };
}
const DENSE_ONLY = [{ type: "dense" as const, units: 8, activation: "relu" as const }];
const FLATTEN_THEN_DENSE = [{ type: "flatten" as const }, ...DENSE_ONLY];

type Caller = ReturnType<typeof createCaller>;
type Launcher = { launch(runId: number): boolean | Promise<boolean> };

async function counts(store: Store): Promise<{ runs: number; sweeps: number; events: number }> {
  const t = store.tables;
  const [r] = await reader(store).select({ n: count() }).from(t.runs);
  const [w] = await reader(store).select({ n: count() }).from(t.sweeps);
  const [e] = await reader(store).select({ n: count() }).from(t.auditEvents).where(ne(t.auditEvents.action, "audit.checkpoint"));
  return { runs: Number(r!.n), sweeps: Number(w!.n), events: Number(e!.n) };
}

/** A grid sweep over one learning rate (and `space`, `maxTrials` points), from `base`. */
function sweepSpec(base: TrainingConfigInput, space: Record<string, unknown> = {}, maxTrials = 1) {
  return {
    name: "buildable?",
    base,
    space: { "training.learningRate": { type: "choice", values: [0.01] }, ...space },
    method: "grid",
    budget: { maxTrials, maxParallel: 1 },
    metric: { name: "val_loss", direction: "minimize" },
    seed: 1,
    rationale: "does it build",
  };
}

async function ended(store: Store, id: number): Promise<string> {
  const r = store.tables.runs;
  const deadline = Date.now() + 120_000;
  for (;;) {
    const [row] = await reader(store).select({ status: r.status }).from(r).where(eq(r.id, id));
    if (row && ["completed", "failed", "cancelled"].includes(row.status)) return row.status;
    if (Date.now() > deadline) throw new Error(`run ${id} did not end`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

/** The same cases on either store. */
async function refusedEverywhere(
  ctx: { store: Store; artifacts: AnyArtifactStore; actor: SignedInActor; orchestrator: Launcher },
  engineer: Caller,
  experimentId: number,
) {
  const { store } = ctx;
  // A run recorded without the check (as a sweep trial or a run from before it), which fails in the trainer.
  const unbuildable = await createRunOnStore(
    { db: store, artifacts: ctx.artifacts, actor: ctx.actor },
    { experimentId, config: digitsConfig(DENSE_ONLY), rationale: "recorded before the check" },
  );
  await ctx.orchestrator.launch(unbuildable.id);
  expect(await ended(store, unbuildable.id)).toBe("failed");

  let before = await counts(store);
  await expect(engineer.runs.rerun({ runId: unbuildable.id, rationale: "again" })).rejects.toThrow(REFUSAL);
  expect(await counts(store)).toEqual(before);

  const { id: flat } = await engineer.runs.create({ experimentId, config: digitsConfig(FLATTEN_THEN_DENSE), rationale: "flat" });
  expect(await ended(store, flat)).toBe("completed");
  before = await counts(store);
  await expect(
    engineer.runs.compress({ runId: flat, method: "distill", student: { model: { layers: DENSE_ONLY } }, rationale: "smaller" }),
  ).rejects.toThrow(REFUSAL);
  expect(await counts(store)).toEqual(before);

  before = await counts(store);
  await expect(engineer.sweeps.create({ experimentId, spec: sweepSpec(digitsConfig(DENSE_ONLY)) })).rejects.toThrow(REFUSAL);
  // Its first trial (iris into dense layers) builds; its second (digits) would not.
  const irisDense = { ...irisConfig({ epochs: 1 }), model: { layers: DENSE_ONLY } };
  const byDataset = sweepSpec(irisDense, { "data.dataset.builtin": { type: "choice", values: ["iris", "digits"] } }, 2);
  await expect(engineer.sweeps.create({ experimentId, spec: byDataset })).rejects.toThrow(REFUSAL);
  expect(await counts(store)).toEqual(before);

  // A buildable config still launches.
  const rerun = await engineer.runs.rerun({ runId: flat, rationale: "again" });
  expect(await ended(store, rerun.id)).toBe("completed");
}

describe("[launches] every launch refuses a model that cannot be built, on SQLite", () => {
  let app: TestApp;
  beforeAll(() => {
    app = createTestApp({ backend: "cpu" });
  });
  afterAll(() => app.close());

  it("a re-run of a run that failed so, a distillation into a dense-only student and such sweeps are refused; nothing recorded", async () => {
    const email = DEMO_USERS.find((u) => u.role === "engineer")!.email;
    const actor = actorOf(app.db.select().from(users).where(eq(users.email, email)).get()!);
    const ctx = { store: asStore(app.db), artifacts: app.artifacts, actor, orchestrator: app.orchestrator };
    await refusedEverywhere(ctx, app.as("engineer"), app.experimentId);
  }, 240_000);
});

const AT = "2026-12-05T18:00:00.000Z";

describePg("[launches] every launch refuses a model that cannot be built, on PostgreSQL", () => {
  const web = usePgWebApp("launch-buildable-all-pg", { at: AT });
  const store = web.store;

  it("a re-run of a run that failed so, a distillation into a dense-only student and such sweeps are refused; nothing recorded", async () => {
    const t = store().tables;
    const [user] = await reader(store()).select().from(t.users).where(eq(t.users.id, TEST_PEOPLE.engineer.id));
    const engineer = createCaller({ services: web.app(), user: actorOf(user!), sessionToken: undefined });
    const project = await engineer.projects.create({ name: "Buildable launches" });
    const experimentId = (await engineer.projects.createExperiment({ projectId: project.id, name: "digits" })).id;
    const ctx = { store: store(), artifacts: web.app().artifacts, actor: actorOf(user!), orchestrator: web.app().orchestrator };
    await refusedEverywhere(ctx, engineer, experimentId);
  }, 300_000);
});

describePg("[launches] the CLI's train refuses a model that cannot be built, on both stores", () => {
  let scratch: ScratchPgDatabase | undefined;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "rl-launch-buildable-cli-"));
  const configFile = path.join(tmp, "digits-dense.json");
  beforeAll(async () => {
    scratch = await createScratchPgDatabase();
    fs.writeFileSync(configFile, JSON.stringify(digitsConfig(DENSE_ONLY)));
  }, 120_000);
  afterAll(async () => {
    await scratch?.drop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("train and sweep exit 2 with the builder's reason and record no run and no sweep", async () => {
    const sqliteDir = path.join(tmp, "sqlite-data");
    const sweepFile = path.join(tmp, "digits-dense-sweep.json");
    fs.writeFileSync(sweepFile, JSON.stringify(sweepSpec(digitsConfig(DENSE_ONLY))));
    const onSqlite = (args: string[]) =>
      runCli([...args, "--data-dir", sqliteDir], { RUNLEDGER_KEY_DIR: path.join(tmp, "sqlite-keys") }, 120_000);
    const pgEnv = {
      DATABASE_URL: scratch!.url,
      RUNLEDGER_DATA_DIR: path.join(tmp, "pg-local"),
      RUNLEDGER_KEY_DIR: path.join(tmp, "pg-keys"),
    };
    for (const [command, file] of [
      ["train", configFile],
      ["sweep", sweepFile],
    ] as const) {
      const outs = await Promise.all([onSqlite([command, "--config", file]), runCli([command, "--config", file], pgEnv, 120_000)]);
      for (const out of outs) {
        expect(out.code, out.stderr).toBe(2);
        expect(out.stderr).toMatch(new RegExp(`^${command}: ${REFUSAL.source}`, "m"));
      }
    }
    const sqlite = openDatabase(sqliteDir);
    const pgDb = openPgDatabase(scratch!.url, { max: 1 });
    try {
      for (const s of [sqliteStore(sqlite), pgStore(pgDb)]) {
        const t = s.tables;
        expect((await reader(s).select({ n: count() }).from(t.runs))[0]!.n).toBe(0);
        expect((await reader(s).select({ n: count() }).from(t.sweeps))[0]!.n).toBe(0);
        expect((await reader(s).select({ n: count() }).from(t.auditEvents).where(eq(t.auditEvents.action, "run.create")))[0]!.n).toBe(0);
      }
    } finally {
      sqlite.$client.close();
      await pgDb.$client.end();
    }
  }, 240_000);
});
