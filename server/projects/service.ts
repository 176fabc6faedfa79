/**
 * Projects and experiments, on the store (issue 16: SQLite or PostgreSQL, db/store.ts).
 *
 * Invariants: a project's name is unique, and an experiment's name within its project; each creation is written with
 * its ledger event in one transaction, which checks the name (and the project) inside it under the ledger lock, so
 * concurrent creations of one name on two servers give one row and a conflict, never a unique-index error.
 */
import { and, count, eq } from "drizzle-orm";
import { z } from "zod";
import type { Db, Tx } from "@/db/client";
import { PG_LOCK_KEYS } from "@/db/pg-client";
import { asStore, byteOrder, reader, row, transact, type Store, type StoreTables, type TxBody } from "@/db/store";
import { appendEvent } from "@/server/audit/ledger-pg";
import { now, requireRole, type SignedInActor } from "../app-context/service-context";
import type { StoreServiceContext } from "../app-context/store-context";
import { conflict, notFound } from "@/server/errors";

export const nameSchema = z.string().trim().min(1, "name must not be empty").max(120, "name must be at most 120 characters");
export const createProjectInput = z.object({ name: nameSchema, description: z.string().max(2000).default("") });
export const createExperimentInput = z.object({
  projectId: z.number().int(),
  name: nameSchema,
  description: z.string().max(2000).default(""),
});

type Project = StoreTables["projects"]["$inferSelect"];
type Experiment = StoreTables["experiments"]["$inferSelect"];

/**
 * Inserts a project and its project.create event; a name in use is a conflict. A transaction part (db/store.ts): the
 * demo seed, still synchronous, runs it through runOnSqliteTx.
 */
export function* insertProject(tx: Tx, t: StoreTables, actor: SignedInActor, input: z.output<typeof createProjectInput>): TxBody<Project> {
  const { name, description } = input;
  if (yield* row(tx.select({ id: t.projects.id }).from(t.projects).where(eq(t.projects.name, name)).limit(1)))
    conflict(`a project named "${name}" already exists`);
  const created = (yield* row(tx.insert(t.projects).values({ name, description, createdBy: actor.id, createdAt: now() }).returning()))!;
  yield* appendEvent({ actor, action: "project.create", entityType: "project", entityId: created.id, payload: { name, description } });
  return created;
}

/** Inserts an experiment and its experiment.create event; an unknown project is not found, a name in use a conflict. */
export function* insertExperiment(
  tx: Tx,
  t: StoreTables,
  actor: SignedInActor,
  input: z.output<typeof createExperimentInput>,
): TxBody<Experiment> {
  const { projectId, name, description } = input;
  if (!(yield* row(tx.select({ id: t.projects.id }).from(t.projects).where(eq(t.projects.id, projectId)))))
    notFound(`project ${projectId}`);
  const { experiments } = t;
  if (
    yield* row(
      tx
        .select({ id: experiments.id })
        .from(experiments)
        .where(and(eq(experiments.projectId, projectId), eq(experiments.name, name))),
    )
  )
    conflict(`this project already has an experiment named "${name}"`);
  const created = (yield* row(
    tx.insert(experiments).values({ projectId, name, description, createdBy: actor.id, createdAt: now() }).returning(),
  ))!;
  yield* appendEvent({
    actor,
    action: "experiment.create",
    entityType: "experiment",
    entityId: created.id,
    payload: { projectId, name, description },
  });
  return created;
}

export async function createProject(ctx: StoreServiceContext, input: z.input<typeof createProjectInput>): Promise<Project> {
  requireRole(ctx.actor, ["engineer", "admin"], "create projects");
  const parsed = createProjectInput.parse(input);
  const store = asStore(ctx.db);
  return transact(store, (tx) => insertProject(tx, store.tables, ctx.actor, parsed), { pgLock: PG_LOCK_KEYS.ledger });
}

export async function createExperiment(ctx: StoreServiceContext, input: z.input<typeof createExperimentInput>): Promise<Experiment> {
  requireRole(ctx.actor, ["engineer"], "create experiments");
  const parsed = createExperimentInput.parse(input);
  const store = asStore(ctx.db);
  return transact(store, (tx) => insertExperiment(tx, store.tables, ctx.actor, parsed), { pgLock: PG_LOCK_KEYS.ledger });
}

/**
 * The store's query builder for reads outside transactions, typed as SQLite's like `store.tables` (db/store.ts's
 * invariants): on PostgreSQL it is node-postgres drizzle, so these queries are only awaited, never `.all()`/`.get()`.
 */
/**
 * Projects with their experiments and each experiment's number of runs (every status). The counts come from one
 * grouped query over runs: a correlated subquery written with drizzle's `sql` renders its columns unqualified in a
 * single-table select ("experiment_id" = "id"), which SQLite resolved inside the subquery (runs.experiment_id =
 * runs.id), so the home page showed 1 run for an experiment with 3 (issue 14). count() is mapped to a number
 * (node-postgres returns bigint as text).
 */
export async function listProjectsWithExperiments(db: Store | Db) {
  const store = asStore(db);
  const read = reader(store);
  const { projects, experiments, runs } = store.tables;
  const [ps, exps, counts] = await Promise.all([
    read.select().from(projects).orderBy(byteOrder(store, projects.name)),
    read
      .select({
        id: experiments.id,
        projectId: experiments.projectId,
        name: experiments.name,
        description: experiments.description,
        createdAt: experiments.createdAt,
      })
      .from(experiments)
      .orderBy(byteOrder(store, experiments.name)),
    read.select({ experimentId: runs.experimentId, n: count() }).from(runs).groupBy(runs.experimentId),
  ]);
  const runCounts = new Map(counts.map((c) => [c.experimentId, c.n]));
  return ps.map((p) => ({
    ...p,
    experiments: exps.filter((e) => e.projectId === p.id).map((e) => ({ ...e, runCount: runCounts.get(e.id) ?? 0 })),
  }));
}

export async function getExperiment(db: Store | Db, id: number) {
  const store = asStore(db);
  const { projects, experiments } = store.tables;
  const [found] = await reader(store)
    .select({ experiment: experiments, projectName: projects.name })
    .from(experiments)
    .innerJoin(projects, eq(projects.id, experiments.projectId))
    .where(eq(experiments.id, id))
    .limit(1);
  if (!found) notFound(`experiment ${id}`);
  return { ...found.experiment, projectName: found.projectName };
}
