/**
 * MLflow experiments: create, get, get-by-name, search, update (rename), delete, restore, set-experiment-tag.
 * Each write and its ledger event share one transaction (experiment.create / experiment.update / experiment.delete /
 * experiment.restore / experiment.setTag; tag values by sha256). Delete and restore only flip the lifecycle
 * (experiments.deleted_at): nothing is erased.
 */
import { and, asc, desc, eq, inArray, sql, type SQL } from "drizzle-orm";
import { z } from "zod";
import type { Tx } from "@/db/client";
import { PG_LOCK_KEYS } from "@/db/pg-client";
import { asStore, byteOrder, exec, reader, row, rows, transact, type Dialect, type Store, type StoreTables, type TxBody } from "@/db/store";
import { appendEvent } from "@/server/audit/ledger-pg";
import { now } from "@/server/app-context/service-context";
import { sha256Hex } from "@/contracts/canonical";
import { MLFLOW_LIMITS, type Experiment, type MlflowEndpoints } from "@/contracts/mlflow/types";
import { insertExperiment, nameSchema } from "@/server/projects/service";
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
  readPart,
  requireWriter,
  type MlflowStoreCtx,
} from "./common";
import { decodePageToken, encodePageToken, maxResultsField, viewTypeField } from "./paging";

type Row = { id: number; name: string; projectName: string; createdAt: string; deletedAt: string | null };
type Tag = { experimentId: number; key: string; value: string; updatedAt: string };

const rowSelect = (t: StoreTables) => ({
  id: t.experiments.id,
  name: t.experiments.name,
  projectName: t.projects.name,
  createdAt: t.experiments.createdAt,
  deletedAt: t.experiments.deletedAt,
});

/** The tags of some experiments, by experiment, each list in key order (byte order on both stores). */
function* tagsOf(q: Tx, t: StoreTables, dialect: Dialect, ids: number[]): TxBody<Map<number, Tag[]>> {
  const out = new Map<number, Tag[]>();
  if (ids.length === 0) return out;
  const { experimentTags } = t;
  const found = yield* rows(
    q
      .select({
        experimentId: experimentTags.experimentId,
        key: experimentTags.key,
        value: experimentTags.value,
        updatedAt: experimentTags.updatedAt,
      })
      .from(experimentTags)
      .where(inArray(experimentTags.experimentId, ids))
      .orderBy(dialect === "pg" ? sql`${experimentTags.key} COLLATE "C"` : asc(experimentTags.key)),
  );
  for (const tag of found) {
    const list = out.get(tag.experimentId);
    if (list) list.push(tag);
    else out.set(tag.experimentId, [tag]);
  }
  return out;
}

function toMlflow(r: Row, tags: Tag[]): Experiment {
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

/** Experiments as MLflow reads them (their tags in one query), in the given order. */
function* experimentsAsMlflow(q: Tx, t: StoreTables, dialect: Dialect, list: Row[]): TxBody<Experiment[]> {
  const tags = yield* tagsOf(
    q,
    t,
    dialect,
    list.map((r) => r.id),
  );
  return list.map((r) => toMlflow(r, tags.get(r.id) ?? []));
}

/** The experiment of an MLflow id, or RESOURCE_DOES_NOT_EXIST (a part: inside a transaction, or through readPart). */
export function* experimentRow(q: Tx, t: StoreTables, experimentId: string): TxBody<Row> {
  const id = numericId(experimentId);
  const found =
    id === null
      ? undefined
      : yield* row(
          q
            .select(rowSelect(t))
            .from(t.experiments)
            .innerJoin(t.projects, eq(t.projects.id, t.experiments.projectId))
            .where(eq(t.experiments.id, id))
            .limit(1),
        );
  if (!found) return doesNotExist(`No Experiment with id=${experimentId} exists`);
  return found;
}

/** The experiment an MLflow name denotes: "<project>/<name>", or a name in the MLflow project. */
function* rowByName(q: Tx, t: StoreTables, fullName: string): TxBody<Row | undefined> {
  const named = (project: string, name: string) =>
    row(
      q
        .select(rowSelect(t))
        .from(t.experiments)
        .innerJoin(t.projects, eq(t.projects.id, t.experiments.projectId))
        .where(and(eq(t.projects.name, project), eq(t.experiments.name, name)))
        .limit(1),
    );
  const own = yield* named(MLFLOW_PROJECT, fullName);
  if (own) return own;
  const slash = fullName.indexOf("/");
  return slash > 0 ? yield* named(fullName.slice(0, slash), fullName.slice(slash + 1)) : undefined;
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

function* writeTag(ctx: MlflowStoreCtx, tx: Tx, t: StoreTables, experimentId: number, key: string, value: string): TxBody<void> {
  const at = now();
  const { experimentTags } = t;
  yield* exec(
    tx
      .insert(experimentTags)
      .values({ experimentId, key, value, updatedAt: at })
      .onConflictDoUpdate({ target: [experimentTags.experimentId, experimentTags.key], set: { value, updatedAt: at } }),
  );
  yield* appendEvent({
    actor: ctx.actor,
    action: "experiment.setTag",
    entityType: "experiment",
    entityId: experimentId,
    payload: { key, valueSha256: sha256Hex(value), updatedAt: at },
  });
}

/**
 * The name is checked inside the transaction under the ledger lock (PostgreSQL), so one name created at once from
 * two servers gives one experiment and RESOURCE_ALREADY_EXISTS, never a unique-index error.
 */
export async function createExperiment(ctx: MlflowStoreCtx, body: unknown): Promise<MlflowEndpoints["experiments/create"]["res"]> {
  const input = parseRequest(
    z.object({ name: z.string(), artifact_location: z.string().optional(), tags: z.array(keyValue).default([]) }),
    body,
  );
  requireWriter(ctx, "create experiments");
  const name = experimentNameField.safeParse(input.name);
  if (!name.success) invalidParam(`Invalid experiment name '${input.name.slice(0, 60)}': ${name.error.issues[0]!.message}`);
  for (const t of input.tags) checkTag(t.key, t.value);
  const store = asStore(ctx.db);
  const t = store.tables;
  return transact(
    store,
    function* (tx) {
      const existing = yield* rowByName(tx, t, name.data!);
      if (existing)
        throw new MlflowError(
          "RESOURCE_ALREADY_EXISTS",
          existing.deletedAt
            ? `Experiment '${name.data}' already exists in deleted state. You can restore the experiment, or permanently delete the experiment to create a new one.`
            : `Experiment '${name.data}' already exists.`,
        );
      const projectId = yield* ensureMlflowProject(tx, t, ctx.actor);
      // The projects service's insert (experiment.create); its own name check repeats ours (MLflow words the refusal).
      const created = yield* insertExperiment(tx, t, ctx.actor, { projectId, name: name.data!, description: "" });
      for (const tag of input.tags) yield* writeTag(ctx, tx, t, created.id, tag.key, tag.value);
      return { experiment_id: String(created.id) };
    },
    { pgLock: PG_LOCK_KEYS.ledger },
  );
}

export async function getExperiment(ctx: MlflowStoreCtx, body: unknown): Promise<MlflowEndpoints["experiments/get"]["res"]> {
  const { experiment_id } = parseRequest(z.object({ experiment_id: idField }), body);
  const store = asStore(ctx.db);
  return readPart(store, function* (q) {
    const found = yield* experimentRow(q, store.tables, experiment_id);
    return { experiment: (yield* experimentsAsMlflow(q, store.tables, store.dialect, [found]))[0]! };
  });
}

export async function getExperimentByName(ctx: MlflowStoreCtx, body: unknown): Promise<MlflowEndpoints["experiments/get-by-name"]["res"]> {
  const { experiment_name } = parseRequest(z.object({ experiment_name: z.string() }), body);
  const store = asStore(ctx.db);
  return readPart(store, function* (q) {
    const found = yield* rowByName(q, store.tables, experiment_name);
    if (!found) return doesNotExist(`Could not find experiment with name '${experiment_name}'`);
    return { experiment: (yield* experimentsAsMlflow(q, store.tables, store.dialect, [found]))[0]! };
  });
}

/**
 * A string comparison of MLflow's filters on either store: =, !=, LIKE (case-sensitive: SQLite's GLOB, PostgreSQL's
 * LIKE) and ILIKE (lower() on both sides). PostgreSQL's LIKE takes no escape character here, as SQLite's has none.
 */
export function stringMatch(dialect: Dialect, col: SQL, op: string, value: string): SQL | undefined {
  const noEscape = dialect === "pg" ? sql` ESCAPE ''` : sql``;
  switch (op) {
    case "=":
      return sql`${col} = ${value}`;
    case "!=":
      return sql`${col} != ${value}`;
    case "LIKE":
      return dialect === "pg" ? sql`${col} LIKE ${value}${noEscape}` : sql`${col} GLOB ${likeToGlob(value)}`;
    case "ILIKE":
      return sql`lower(${col}) LIKE lower(${value})${noEscape}`;
    default:
      return undefined;
  }
}

/**
 * Filter: clauses joined by AND over `name` (=, !=, LIKE, ILIKE) and `tags.<key>` (=, !=, LIKE, ILIKE);
 * order_by: name, experiment_id, creation_time, last_update_time (ASC/DESC). Paging by offset in page_token.
 */
export async function searchExperiments(ctx: MlflowStoreCtx, body: unknown): Promise<MlflowEndpoints["experiments/search"]["res"]> {
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
  const store = asStore(ctx.db);
  const { experiments, projects } = store.tables;
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
    const compare = (col: SQL) => stringMatch(store.dialect, col, op, value)!;
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
      name: byteOrder(store, fullName),
      experiment_id: sql`${experiments.id}`,
      creation_time: sql`${experiments.createdAt}`,
      last_update_time: sql`${experiments.createdAt}`,
    }[m[1]!.toLowerCase() as "name"];
    return m[2]?.toUpperCase() === "DESC" ? desc(col) : asc(col);
  });
  const found = await reader(store)
    .select(rowSelect(store.tables))
    .from(experiments)
    .innerJoin(projects, eq(projects.id, experiments.projectId))
    .where(conds.length ? and(...conds) : undefined)
    .orderBy(...(orders.length ? orders : [desc(experiments.createdAt)]), asc(experiments.id))
    .limit(input.max_results + 1)
    .offset(offset);
  const page = found.slice(0, input.max_results);
  const listed = await readPart(store, (q) => experimentsAsMlflow(q, store.tables, store.dialect, page));
  return {
    ...(listed.length ? { experiments: listed } : {}), // proto3 JSON omits an empty list
    ...(found.length > input.max_results ? { next_page_token: encodePageToken(offset + input.max_results) } : {}),
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

/** One write to an experiment, in a transaction under the ledger lock (the row re-read inside it). */
async function mutate(
  ctx: MlflowStoreCtx,
  body: unknown,
  doing: string,
  fn: (tx: Tx, t: StoreTables, row: Row) => TxBody<void>,
): Promise<Record<string, never>> {
  const { experiment_id } = parseRequest(z.object({ experiment_id: idField }), body);
  requireWriter(ctx, doing);
  const store: Store = asStore(ctx.db);
  const t = store.tables;
  await transact(
    store,
    function* (tx) {
      yield* fn(tx, t, yield* experimentRow(tx, t, experiment_id));
    },
    { pgLock: PG_LOCK_KEYS.ledger },
  );
  return {};
}

export async function updateExperiment(ctx: MlflowStoreCtx, body: unknown) {
  const { new_name } = parseRequest(z.object({ new_name: z.string() }), body);
  const name = experimentNameField.safeParse(new_name);
  if (!name.success) invalidParam(`Invalid experiment name '${new_name.slice(0, 60)}': ${name.error.issues[0]!.message}`);
  return mutate(ctx, body, "rename experiments", function* (tx, t, row) {
    if (row.projectName !== MLFLOW_PROJECT)
      throw new MlflowError(
        "INVALID_PARAMETER_VALUE",
        `Experiment ${row.id} belongs to project "${row.projectName}": rename it in Runledger`,
      );
    if (row.deletedAt) invalidParam(`Cannot rename a non-active experiment ${row.id}`);
    if (name.data === row.name) return;
    if (yield* rowByName(tx, t, name.data!)) throw new MlflowError("RESOURCE_ALREADY_EXISTS", `Experiment '${name.data}' already exists.`);
    yield* exec(tx.update(t.experiments).set({ name: name.data }).where(eq(t.experiments.id, row.id)));
    yield* appendEvent({
      actor: ctx.actor,
      action: "experiment.update",
      entityType: "experiment",
      entityId: row.id,
      payload: { field: "name", from: row.name, to: name.data },
    });
  });
}

export async function deleteExperiment(ctx: MlflowStoreCtx, body: unknown) {
  return mutate(ctx, body, "delete experiments", function* (tx, t, row) {
    if (row.deletedAt) return;
    const at = now();
    yield* exec(tx.update(t.experiments).set({ deletedAt: at }).where(eq(t.experiments.id, row.id)));
    yield* appendEvent({
      actor: ctx.actor,
      action: "experiment.delete",
      entityType: "experiment",
      entityId: row.id,
      payload: { deletedAt: at },
    });
  });
}

export async function restoreExperiment(ctx: MlflowStoreCtx, body: unknown) {
  return mutate(ctx, body, "restore experiments", function* (tx, t, row) {
    if (!row.deletedAt) return;
    yield* exec(tx.update(t.experiments).set({ deletedAt: null }).where(eq(t.experiments.id, row.id)));
    yield* appendEvent({
      actor: ctx.actor,
      action: "experiment.restore",
      entityType: "experiment",
      entityId: row.id,
      payload: { deletedAt: row.deletedAt, restoredAt: now() },
    });
  });
}

export async function setExperimentTag(ctx: MlflowStoreCtx, body: unknown) {
  const { key, value } = parseRequest(z.object({ key: z.string(), value: z.string() }), body);
  checkTag(key, value);
  return mutate(ctx, body, "tag experiments", function* (tx, t, row) {
    if (row.deletedAt) invalidParam(`The experiment ${row.id} must be in the 'active' state. Current state is deleted.`);
    yield* writeTag(ctx, tx, t, row.id, key, value);
  });
}
