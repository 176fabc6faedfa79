/**
 * First-start seeding: demo users (one per role), a demo project and experiment, and optionally one
 * completed demo run on Iris.
 *
 * Invariants:
 * - Demo users are created only in a NEW database (no users at all) and only when demo data is wanted
 *   (`RUNLEDGER_DEMO=0` skips it). A later start never re-creates them or resets their passwords, so a changed or
 *   disabled demo account stays changed or disabled.
 * - The demo passwords are public (README, server/auth/demo-users.ts): administrators see a warning banner while
 *   any of them is unchanged.
 */
import { eq } from "drizzle-orm";
import { users, projects, experiments, runs } from "@/db/schema";
import type { Db } from "@/db/client";
import { insertUser, insertUserWithEvent, actorOf } from "@/server/users/service";
import { DEMO_USERS, type DemoUser } from "@/server/auth/demo-users";
import {
  createExperiment,
  createExperimentInput,
  createProject,
  createProjectInput,
  insertExperiment,
  insertProject,
} from "@/server/projects/service";
import { asStore, reader, runOnSqliteTx, sqliteStore, type Store } from "@/db/store";
import { createRun, createRunOnStore } from "@/server/runs/service";
import type { AnyServiceDeps } from "@/server/app-context/service-context";
import type { RunOrchestrator } from "@/server/runs/orchestrator/orchestrator";
import { SYSTEM_ACTOR } from "@/server/audit/ledger";
import type { AppServices } from "../app-context/app-services";
import type { TrainingConfigInput } from "@/contracts/training-config";

export { DEMO_USERS };

/** False when the operator set RUNLEDGER_DEMO=0 (no demo users, project or run). */
export function demoDataWanted(): boolean {
  return process.env.RUNLEDGER_DEMO?.trim() !== "0";
}

/** A database nobody has been added to yet. */
export function isNewDatabase(db: Db): boolean {
  return !db.select({ id: users.id }).from(users).limit(1).get();
}

export const DEMO_PROJECT = "Demo: flower classifier";
export const DEMO_EXPERIMENT = "iris-mlp";

export const DEMO_CONFIG: TrainingConfigInput = {
  name: "iris baseline",
  data: {
    dataset: { builtin: "iris" },
    task: "classification",
    cleaning: [],
    normalization: "standard",
    split: { strategy: "stratified", train: 0.7, validation: 0.15, test: 0.15, seed: 7 },
  },
  model: {
    layers: [
      { type: "dense", units: 16, activation: "relu" },
      { type: "dense", units: 8, activation: "relu" },
    ],
  },
  training: { optimizer: { name: "adam" }, learningRate: 0.02, batchSize: 16, epochs: 40, seed: 7 },
};

export type SeedResult = { createdUsers: DemoUser[]; projectId: number; experimentId: number; demoRunId: number | null };

/**
 * The demo users (in a new database only) and the demo project and experiment (found, or created by the demo
 * engineer). Throws a clear error when the database has no demo engineer (created without demo data).
 */
export function ensureDemoUsersAndProject(services: AppServices): SeedResult {
  const { db } = services;
  const createdUsers: DemoUser[] = [];
  if (isNewDatabase(db)) {
    if (!demoDataWanted())
      throw new Error("RUNLEDGER_DEMO=0: this new database gets no demo data; create users with `npm run cli -- users create`");
    for (const u of DEMO_USERS) {
      db.transaction((tx) =>
        runOnSqliteTx(
          tx,
          insertUserWithEvent(tx, sqliteStore(db).tables, SYSTEM_ACTOR, {
            email: u.email,
            name: u.name,
            role: u.role,
            passwordHash: u.passwordHash,
          }),
        ),
      );
      createdUsers.push(u);
    }
  }
  const engineer = db.select().from(users).where(eq(users.email, DEMO_USERS[1]!.email)).get();
  if (!engineer)
    throw new Error(
      `this database has no demo engineer (${DEMO_USERS[1]!.email}): it was created without demo data, so there is no demo project`,
    );
  const actor = actorOf(engineer);
  // The projects domain is on the store (async); this seed stays synchronous (test apps and benches build on it), so it
  // runs the domain's transaction parts inside its own SQLite transaction (db/store.ts runOnSqliteTx).
  const tables = sqliteStore(db).tables;
  const project =
    db.select().from(projects).where(eq(projects.name, DEMO_PROJECT)).get() ??
    db.transaction(
      (tx) =>
        runOnSqliteTx(
          tx,
          insertProject(
            tx,
            tables,
            actor,
            createProjectInput.parse({
              name: DEMO_PROJECT,
              description: "A small MLP on Fisher's Iris data, seeded on first start so there is something to look at.",
            }),
          ),
        ),
      { behavior: "immediate" },
    );
  const experiment =
    db.select().from(experiments).where(eq(experiments.name, DEMO_EXPERIMENT)).get() ??
    db.transaction(
      (tx) =>
        runOnSqliteTx(
          tx,
          insertExperiment(
            tx,
            tables,
            actor,
            createExperimentInput.parse({ projectId: project.id, name: DEMO_EXPERIMENT, description: "Baseline MLPs on Iris." }),
          ),
        ),
      { behavior: "immediate" },
    );
  return { createdUsers, projectId: project.id, experimentId: experiment.id, demoRunId: null };
}

/** Seeds everything, training the demo run to completion when the demo experiment has no run yet. */
export async function ensureDemoSeed(services: AppServices): Promise<SeedResult> {
  const base = ensureDemoUsersAndProject(services);
  const { db } = services;
  if (db.select({ id: runs.id }).from(runs).where(eq(runs.experimentId, base.experimentId)).get()) return base;
  const engineer = db.select().from(users).where(eq(users.email, DEMO_USERS[1]!.email)).get()!;
  const run = createRun(
    { ...services, actor: actorOf(engineer) },
    {
      experimentId: base.experimentId,
      config: DEMO_CONFIG,
      rationale: "Baseline: two small hidden layers, Adam, standardised features, stratified 70/15/15 split.",
    },
  );
  await services.orchestrator.launch(run.id);
  await services.orchestrator.waitFor(run.id);
  return { ...base, demoRunId: run.id };
}

/** isNewDatabase on either store. */
export async function isNewStore(source: Store | Db): Promise<boolean> {
  const store = asStore(source);
  const { users: u } = store.tables;
  return (await reader(store).select({ id: u.id }).from(u).limit(1)).length === 0;
}

/**
 * ensureDemoSeed on either store (issue 16: `npm run serve` on PostgreSQL seeds through it): the demo users in a new
 * store, the demo project and experiment (found by name, or created by the demo engineer), and the demo run trained
 * to completion when the experiment has none (`withRun`). Each step goes through its ported service, so every row has
 * its ledger event; found rows are never changed. Two web servers seeding one new store at once: the second's user
 * inserts fail on the unique email and it stops there with that error (start one server first).
 */
export async function ensureDemoSeedOn(
  services: AnyServiceDeps & { orchestrator: RunOrchestrator },
  opts: { withRun: boolean },
): Promise<SeedResult> {
  const store = asStore(services.db);
  const t = store.tables;
  const createdUsers: DemoUser[] = [];
  if (await isNewStore(store)) {
    if (!demoDataWanted())
      throw new Error("RUNLEDGER_DEMO=0: this new database gets no demo data; create users with `npm run cli -- users create`");
    for (const u of DEMO_USERS) {
      await insertUser(store, SYSTEM_ACTOR, { email: u.email, name: u.name, role: u.role, passwordHash: u.passwordHash });
      createdUsers.push(u);
    }
  }
  const [engineer] = await reader(store).select().from(t.users).where(eq(t.users.email, DEMO_USERS[1]!.email)).limit(1);
  if (!engineer)
    throw new Error(
      `this database has no demo engineer (${DEMO_USERS[1]!.email}): it was created without demo data, so there is no demo project`,
    );
  const ctx = { db: store, actor: actorOf(engineer) };
  const [foundProject] = await reader(store).select().from(t.projects).where(eq(t.projects.name, DEMO_PROJECT)).limit(1);
  const project =
    foundProject ??
    (await createProject(ctx, {
      name: DEMO_PROJECT,
      description: "A small MLP on Fisher's Iris data, seeded on first start so there is something to look at.",
    }));
  const [foundExperiment] = await reader(store).select().from(t.experiments).where(eq(t.experiments.name, DEMO_EXPERIMENT)).limit(1);
  const experiment =
    foundExperiment ??
    (await createExperiment(ctx, { projectId: project.id, name: DEMO_EXPERIMENT, description: "Baseline MLPs on Iris." }));
  const base = { createdUsers, projectId: project.id, experimentId: experiment.id, demoRunId: null };
  if (!opts.withRun) return base;
  if ((await reader(store).select({ id: t.runs.id }).from(t.runs).where(eq(t.runs.experimentId, experiment.id)).limit(1)).length)
    return base;
  const run = await createRunOnStore(
    { ...ctx, artifacts: services.artifacts },
    {
      experimentId: experiment.id,
      config: DEMO_CONFIG,
      rationale: "Baseline: two small hidden layers, Adam, standardised features, stratified 70/15/15 split.",
    },
  );
  await services.orchestrator.launch(run.id);
  await services.orchestrator.waitFor(run.id);
  return { ...base, demoRunId: run.id };
}
