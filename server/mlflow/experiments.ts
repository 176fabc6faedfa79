/**
 * MLflow experiments: create, get, get-by-name, search, update (rename), delete, restore, set-experiment-tag.
 * Each write and its ledger event share one transaction (experiment.create / experiment.update / experiment.delete /
 * experiment.restore / experiment.setTag; tag values by sha256). Delete and restore only flip the lifecycle
 * (experiments.deleted_at): nothing is erased.
 */
import { and, asc, desc, eq, sql } from "drizzle-orm";
import { z } from "zod";
import { experiments, experimentTags, projects } from "@/db/schema";
import type { DbOrTx } from "@/db/client";
import { appendAuditEvent } from "@/server/audit/ledger";
import { now } from "@/server/app-context/service-context";
import { sha256Hex } from "@/contracts/canonical";
import { MLFLOW_LIMITS, type Experiment, type MlflowEndpoints } from "@/contracts/mlflow/types";
import { nameSchema } from "@/server/projects/service";
import { doesNotExist, invalidParam, MlflowError } from "./errors";
import {
  ensureMlflowProject,
  idField,
  keyValue,
  MLFLOW_PROJECT,
  mlflowExperimentName,
  ms,
  numericId,
  parseRequest,
  requireWriter,
  type MlflowCtx,
} from "./common";
import { decodePageToken, encodePageToken, maxResultsField, viewTypeField } from "./paging";

type Row = { id: number; name: string; projectName: string; createdAt: string; deletedAt: string | null };

const rowSelect = {
  id: experiments.id,
  name: experiments.name,
  projectName: projects.name,
  createdAt: experiments.createdAt,
  deletedAt: experiments.deletedAt,
};

function toMlflow(db: DbOrTx, r: Row): Experiment {
  const tags = db
    .select({ key: experimentTags.key, value: experimentTags.value, updatedAt: experimentTags.updatedAt })
    .from(experimentTags)
    .where(eq(experimentTags.experimentId, r.id))
    .orderBy(asc(experimentTags.key))
    .all();
  const updated = [r.createdAt, r.deletedAt ?? "", ...tags.map((t) => t.updatedAt)].sort().at(-1)!;
  return {
    experiment_id: String(r.id),
    name: mlflowExperimentName(r.projectName, r.name),
    artifact_location: `mlflow-artifacts:/${r.id}`,
    lifecycle_stage: r.deletedAt ? "deleted" : "active",
    last_update_time: ms(updated)!,
    creation_time: ms(r.createdAt)!,
    ...(tags.length ? { tags: tags.map((t) => ({ key: t.key, value: t.value })) } : {}),
  };
}

export function experimentRow(db: DbOrTx, experimentId: string): Row {
  const id = numericId(experimentId);
  const row =
    id === null
      ? undefined
      : db
          .select(rowSelect)
          .from(experiments)
          .innerJoin(projects, eq(projects.id, experiments.projectId))
          .where(eq(experiments.id, id))
          .get();
  if (!row) return doesNotExist(`No Experiment with id=${experimentId} exists`);
  return row;
}

/** The experiment an MLflow name denotes: "<project>/<name>", or a name in the MLflow project. */
function rowByName(db: DbOrTx, fullName: string): Row | undefined {
  const q = (project: string, name: string) =>
    db
      .select(rowSelect)
      .from(experiments)
      .innerJoin(projects, eq(projects.id, experiments.projectId))
      .where(and(eq(projects.name, project), eq(experiments.name, name)))
      .get();
  const own = q(MLFLOW_PROJECT, fullName);
  if (own) return own;
  const slash = fullName.indexOf("/");
  return slash > 0 ? q(fullName.slice(0, slash), fullName.slice(slash + 1)) : undefined;
}

const experimentNameField = nameSchema.refine((n) => n.length <= MLFLOW_LIMITS.maxExperimentNameLength);

function checkTag(key: string, value: string) {
  if (!key) invalidParam("Missing value for required parameter 'key'.");
  if (key.length > MLFLOW_LIMITS.maxEntityKeyLength)
    invalidParam(
      `Tag key '${key.slice(0, 40)}…' had length ${key.length}, which exceeded length limit of ${MLFLOW_LIMITS.maxEntityKeyLength}`,
    );
  if (value.length > MLFLOW_LIMITS.maxExperimentTagValueLength)
    invalidParam(
      `Tag value for key '${key}' had length ${value.length}, which exceeded length limit of ${MLFLOW_LIMITS.maxExperimentTagValueLength}`,
    );
}

function writeTag(ctx: MlflowCtx, tx: DbOrTx, experimentId: number, key: string, value: string) {
  const at = now();
  tx.insert(experimentTags)
    .values({ experimentId, key, value, updatedAt: at })
    .onConflictDoUpdate({ target: [experimentTags.experimentId, experimentTags.key], set: { value, updatedAt: at } })
    .run();
  appendAuditEvent(tx, {
    actor: ctx.actor,
    action: "experiment.setTag",
    entityType: "experiment",
    entityId: experimentId,
    payload: { key, valueSha256: sha256Hex(value), updatedAt: at },
  });
}

export function createExperiment(ctx: MlflowCtx, body: unknown): MlflowEndpoints["experiments/create"]["res"] {
  const input = parseRequest(
    z.object({ name: z.string(), artifact_location: z.string().optional(), tags: z.array(keyValue).default([]) }),
    body,
  );
  requireWriter(ctx, "create experiments");
  const name = experimentNameField.safeParse(input.name);
  if (!name.success) invalidParam(`Invalid experiment name '${input.name.slice(0, 60)}': ${name.error.issues[0]!.message}`);
  for (const t of input.tags) checkTag(t.key, t.value);
  return ctx.db.transaction((tx) => {
    const existing = rowByName(tx, name.data!);
    if (existing)
      throw new MlflowError(
        "RESOURCE_ALREADY_EXISTS",
        existing.deletedAt
          ? `Experiment '${name.data}' already exists in deleted state. You can restore the experiment, or permanently delete the experiment to create a new one.`
          : `Experiment '${name.data}' already exists.`,
      );
    const projectId = ensureMlflowProject(tx, ctx.actor);
    const row = tx
      .insert(experiments)
      .values({ projectId, name: name.data!, description: "", createdBy: ctx.actor.id, createdAt: now() })
      .returning()
      .get();
    appendAuditEvent(tx, {
      actor: ctx.actor,
      action: "experiment.create",
      entityType: "experiment",
      entityId: row.id,
      payload: { projectId, name: row.name, description: "" },
    });
    for (const t of input.tags) writeTag(ctx, tx, row.id, t.key, t.value);
    return { experiment_id: String(row.id) };
  });
}

export function getExperiment(ctx: MlflowCtx, body: unknown): MlflowEndpoints["experiments/get"]["res"] {
  const { experiment_id } = parseRequest(z.object({ experiment_id: idField }), body);
  return { experiment: toMlflow(ctx.db, experimentRow(ctx.db, experiment_id)) };
}

export function getExperimentByName(ctx: MlflowCtx, body: unknown): MlflowEndpoints["experiments/get-by-name"]["res"] {
  const { experiment_name } = parseRequest(z.object({ experiment_name: z.string() }), body);
  const row = rowByName(ctx.db, experiment_name);
  if (!row) return doesNotExist(`Could not find experiment with name '${experiment_name}'`);
  return { experiment: toMlflow(ctx.db, row) };
}

/**
 * Filter: clauses joined by AND over `name` (=, !=, LIKE, ILIKE) and `tags.<key>` (=, !=, LIKE, ILIKE);
 * order_by: name, experiment_id, creation_time, last_update_time (ASC/DESC). Paging by offset in page_token.
 */
export function searchExperiments(ctx: MlflowCtx, body: unknown): MlflowEndpoints["experiments/search"]["res"] {
  const input = parseRequest(
    z.object({
      max_results: maxResultsField,
      page_token: z.string().optional(),
      filter: z.string().optional(),
      order_by: z.union([z.array(z.string()), z.string().transform((s) => [s])]).default([]),
      view_type: viewTypeField,
    }),
    body,
  );
  const offset = decodePageToken(input.page_token);
  const conds = [];
  if (input.view_type === "ACTIVE_ONLY") conds.push(sql`${experiments.deletedAt} IS NULL`);
  if (input.view_type === "DELETED_ONLY") conds.push(sql`${experiments.deletedAt} IS NOT NULL`);
  const fullName = sql`(CASE WHEN ${projects.name} = ${MLFLOW_PROJECT} THEN ${experiments.name} ELSE ${projects.name} || '/' || ${experiments.name} END)`;
  for (const clause of splitAnd(input.filter ?? "")) {
    const m = /^(name|tags\.(?:`([^`]+)`|"([^"]+)"|([\w.\-/ :]+)))\s*(=|!=|LIKE|ILIKE)\s*(?:'((?:[^']|'')*)'|"((?:[^"]|"")*)")$/i.exec(
      clause,
    );
    if (!m)
      return invalidParam(`Invalid filter '${clause}': expected name or tags.<key>, an operator (=, !=, LIKE, ILIKE) and a quoted string`);
    const value = m[6] !== undefined ? m[6].replace(/''/g, "'") : m[7]!.replace(/""/g, '"');
    const op = m[5]!.toUpperCase();
    const compare = (col: ReturnType<typeof sql>) =>
      op === "="
        ? sql`${col} = ${value}`
        : op === "!="
          ? sql`${col} != ${value}`
          : op === "LIKE"
            ? sql`${col} GLOB ${likeToGlob(value)}`
            : sql`lower(${col}) LIKE lower(${value})`;
    if (m[1]!.toLowerCase() === "name") conds.push(compare(fullName));
    else {
      const key = (m[2] ?? m[3] ?? m[4]!).trim();
      conds.push(
        sql`EXISTS (SELECT 1 FROM experiment_tags et WHERE et.experiment_id = "experiments"."id" AND et.key = ${key} AND ${compare(sql`et.value`)})`,
      );
    }
  }
  const orders = input.order_by.map((o) => {
    const m = /^\s*(name|experiment_id|creation_time|last_update_time)\s*(ASC|DESC)?\s*$/i.exec(o);
    if (!m) return invalidParam(`Invalid order_by clause '${o}': order by name, experiment_id, creation_time or last_update_time`);
    const col = {
      name: fullName,
      experiment_id: sql`${experiments.id}`,
      creation_time: sql`${experiments.createdAt}`,
      last_update_time: sql`${experiments.createdAt}`,
    }[m[1]!.toLowerCase() as "name"];
    return m[2]?.toUpperCase() === "DESC" ? desc(col) : asc(col);
  });
  const rows = ctx.db
    .select(rowSelect)
    .from(experiments)
    .innerJoin(projects, eq(projects.id, experiments.projectId))
    .where(conds.length ? and(...conds) : undefined)
    .orderBy(...(orders.length ? orders : [desc(experiments.createdAt)]), asc(experiments.id))
    .limit(input.max_results + 1)
    .offset(offset)
    .all();
  const page = rows.slice(0, input.max_results);
  return {
    ...(page.length ? { experiments: page.map((r) => toMlflow(ctx.db, r)) } : {}), // proto3 JSON omits an empty list
    ...(rows.length > input.max_results ? { next_page_token: encodePageToken(offset + input.max_results) } : {}),
  };
}

/** Clauses of a filter joined by AND (outside quotes), trimmed; "" gives none. */
export function splitAnd(filter: string): string[] {
  const out: string[] = [];
  let cur = "";
  let quote: string | null = null;
  for (let i = 0; i < filter.length; i++) {
    const ch = filter[i]!;
    if (quote) {
      cur += ch;
      if (ch === quote) quote = null;
      continue;
    }
    if (ch === "'" || ch === '"' || ch === "`") {
      quote = ch;
      cur += ch;
      continue;
    }
    if (/\s/.test(ch) && /^and\s/i.test(filter.slice(i + 1, i + 5)) && cur.trim()) {
      out.push(cur.trim());
      cur = "";
      i += 4;
      continue;
    }
    cur += ch;
  }
  if (quote) invalidParam(`Invalid filter '${filter}': a quoted value is not closed`);
  if (cur.trim()) out.push(cur.trim());
  return out;
}

/** SQL LIKE pattern (% and _ wildcards, case-sensitive as in MLflow) as a GLOB pattern. */
export function likeToGlob(like: string): string {
  return like
    .replace(/[*?[\]]/g, (c) => `[${c}]`)
    .replace(/%/g, "*")
    .replace(/_/g, "?");
}

function mutate(ctx: MlflowCtx, body: unknown, doing: string, fn: (tx: DbOrTx, row: Row) => void) {
  const { experiment_id } = parseRequest(z.object({ experiment_id: idField }), body);
  requireWriter(ctx, doing);
  ctx.db.transaction((tx) => fn(tx, experimentRow(tx, experiment_id)));
  return {};
}

export function updateExperiment(ctx: MlflowCtx, body: unknown) {
  const { new_name } = parseRequest(z.object({ new_name: z.string() }), body);
  const name = experimentNameField.safeParse(new_name);
  if (!name.success) invalidParam(`Invalid experiment name '${new_name.slice(0, 60)}': ${name.error.issues[0]!.message}`);
  return mutate(ctx, body, "rename experiments", (tx, row) => {
    if (row.projectName !== MLFLOW_PROJECT)
      throw new MlflowError(
        "INVALID_PARAMETER_VALUE",
        `Experiment ${row.id} belongs to project "${row.projectName}": rename it in Runledger`,
      );
    if (row.deletedAt) invalidParam(`Cannot rename a non-active experiment ${row.id}`);
    if (name.data === row.name) return;
    if (rowByName(tx, name.data!)) throw new MlflowError("RESOURCE_ALREADY_EXISTS", `Experiment '${name.data}' already exists.`);
    tx.update(experiments).set({ name: name.data }).where(eq(experiments.id, row.id)).run();
    appendAuditEvent(tx, {
      actor: ctx.actor,
      action: "experiment.update",
      entityType: "experiment",
      entityId: row.id,
      payload: { field: "name", from: row.name, to: name.data },
    });
  });
}

export function deleteExperiment(ctx: MlflowCtx, body: unknown) {
  return mutate(ctx, body, "delete experiments", (tx, row) => {
    if (row.deletedAt) return;
    const at = now();
    tx.update(experiments).set({ deletedAt: at }).where(eq(experiments.id, row.id)).run();
    appendAuditEvent(tx, {
      actor: ctx.actor,
      action: "experiment.delete",
      entityType: "experiment",
      entityId: row.id,
      payload: { deletedAt: at },
    });
  });
}

export function restoreExperiment(ctx: MlflowCtx, body: unknown) {
  return mutate(ctx, body, "restore experiments", (tx, row) => {
    if (!row.deletedAt) return;
    tx.update(experiments).set({ deletedAt: null }).where(eq(experiments.id, row.id)).run();
    appendAuditEvent(tx, {
      actor: ctx.actor,
      action: "experiment.restore",
      entityType: "experiment",
      entityId: row.id,
      payload: { deletedAt: row.deletedAt, restoredAt: now() },
    });
  });
}

export function setExperimentTag(ctx: MlflowCtx, body: unknown) {
  const { key, value } = parseRequest(z.object({ key: z.string(), value: z.string() }), body);
  checkTag(key, value);
  return mutate(ctx, body, "tag experiments", (tx, row) => {
    if (row.deletedAt) invalidParam(`The experiment ${row.id} must be in the 'active' state. Current state is deleted.`);
    writeTag(ctx, tx, row.id, key, value);
  });
}
