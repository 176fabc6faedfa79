/** Projects and experiments. */
import { and, count, eq } from "drizzle-orm";
import { z } from "zod";
import { projects, experiments, runs } from "@/db/schema";
import type { DbOrTx } from "@/db/client";
import { appendAuditEvent } from "@/server/audit/ledger";
import { now, requireRole, type ServiceContext } from "../app-context/service-context";
import { conflict, notFound } from "@/server/errors";

export const nameSchema = z.string().trim().min(1, "name must not be empty").max(120, "name must be at most 120 characters");
export const createProjectInput = z.object({ name: nameSchema, description: z.string().max(2000).default("") });
export const createExperimentInput = z.object({
  projectId: z.number().int(),
  name: nameSchema,
  description: z.string().max(2000).default(""),
});

export function createProject(ctx: ServiceContext, input: z.input<typeof createProjectInput>) {
  requireRole(ctx.actor, ["engineer", "admin"], "create projects");
  const { name, description } = createProjectInput.parse(input);
  if (ctx.db.select({ id: projects.id }).from(projects).where(eq(projects.name, name)).get())
    conflict(`a project named "${name}" already exists`);
  return ctx.db.transaction((tx) => {
    const row = tx.insert(projects).values({ name, description, createdBy: ctx.actor.id, createdAt: now() }).returning().get();
    appendAuditEvent(tx, {
      actor: ctx.actor,
      action: "project.create",
      entityType: "project",
      entityId: row.id,
      payload: { name, description },
    });
    return row;
  });
}

export function createExperiment(ctx: ServiceContext, input: z.input<typeof createExperimentInput>) {
  requireRole(ctx.actor, ["engineer"], "create experiments");
  const { projectId, name, description } = createExperimentInput.parse(input);
  if (!ctx.db.select({ id: projects.id }).from(projects).where(eq(projects.id, projectId)).get()) notFound(`project ${projectId}`);
  if (
    ctx.db
      .select({ id: experiments.id })
      .from(experiments)
      .where(and(eq(experiments.projectId, projectId), eq(experiments.name, name)))
      .get()
  )
    conflict(`this project already has an experiment named "${name}"`);
  return ctx.db.transaction((tx) => {
    const row = tx
      .insert(experiments)
      .values({ projectId, name, description, createdBy: ctx.actor.id, createdAt: now() })
      .returning()
      .get();
    appendAuditEvent(tx, {
      actor: ctx.actor,
      action: "experiment.create",
      entityType: "experiment",
      entityId: row.id,
      payload: { projectId, name, description },
    });
    return row;
  });
}

/**
 * Projects with their experiments and each experiment's number of runs (every status). The counts come from one
 * grouped query over runs: a correlated subquery written with drizzle's `sql` renders its columns unqualified in a
 * single-table select ("experiment_id" = "id"), which SQLite resolved inside the subquery (runs.experiment_id =
 * runs.id), so the home page showed 1 run for an experiment with 3 (issue 14).
 */
export function listProjectsWithExperiments(db: DbOrTx) {
  const ps = db.select().from(projects).orderBy(projects.name).all();
  const exps = db
    .select({
      id: experiments.id,
      projectId: experiments.projectId,
      name: experiments.name,
      description: experiments.description,
      createdAt: experiments.createdAt,
    })
    .from(experiments)
    .orderBy(experiments.name)
    .all();
  const counts = new Map(
    db
      .select({ experimentId: runs.experimentId, n: count() })
      .from(runs)
      .groupBy(runs.experimentId)
      .all()
      .map((c) => [c.experimentId, c.n]),
  );
  return ps.map((p) => ({
    ...p,
    experiments: exps.filter((e) => e.projectId === p.id).map((e) => ({ ...e, runCount: counts.get(e.id) ?? 0 })),
  }));
}

export function getExperiment(db: DbOrTx, id: number) {
  const row = db
    .select({ experiment: experiments, projectName: projects.name })
    .from(experiments)
    .innerJoin(projects, eq(projects.id, experiments.projectId))
    .where(eq(experiments.id, id))
    .get();
  if (!row) notFound(`experiment ${id}`);
  return { ...row.experiment, projectName: row.projectName };
}
