/**
 * runs/search: MLflow's filter syntax (clauses joined by AND) and order_by over runs, with offset paging.
 *
 * - metrics.<key> <op> <number> compares the key's latest value (metric_summaries.last); params.<key> and
 *   tags.<key> compare strings with =, !=, LIKE (case-sensitive), ILIKE; attributes.<name> (also attribute./attr./
 *   run.) over run_id (=, !=, IN, NOT IN), run_name, status, user_id (string ops), start_time, end_time (numeric ops,
 *   ms since the epoch). Keys may be quoted with backticks or double quotes.
 * - order_by: "metrics.k", "params.k", "tags.k" or an attribute, then ASC/DESC; default start_time DESC, then id.
 *   Runs without the key sort last, as MLflow does.
 * On the store (issue 16): the SQL that differs by dialect is chosen here by `store.dialect` (ARCHITECTURE.md rule 4):
 * case-sensitive LIKE (SQLite's GLOB, PostgreSQL's LIKE: experiments.ts stringMatch), a param's JSON string
 * (json_extract, `::jsonb #>> '{}'`), and text ordered in byte order (COLLATE "C" on PostgreSQL).
 */
import { sql, type SQL } from "drizzle-orm";
import { z } from "zod";
import { asStore, reader, type Dialect, type StoreTables } from "@/db/store";

/** The outer run id, qualified (drizzle renders a single-table select's columns unqualified, which a subquery over
 *  a table with its own "id" would resolve to itself). */
const RUN_ID = sql.raw(`"runs"."id"`);
const RUN_CREATED_BY = sql.raw(`"runs"."created_by"`);
import type { MlflowEndpoints } from "@/contracts/mlflow/types";
import { invalidParam } from "./errors";
import { idField, iso, numericId, parseRequest, readPart, STATUS_OF_MLFLOW, type MlflowStoreCtx } from "./common";
import { splitAnd, stringMatch } from "./experiments";
import { decodePageToken, encodePageToken, maxResultsField, viewTypeField } from "./paging";
import { mlflowRunsOf, type RunRow } from "./runs";

type Entity = "metric" | "param" | "tag" | "attribute";
const ENTITY_OF: Record<string, Entity> = {
  metric: "metric",
  metrics: "metric",
  param: "param",
  params: "param",
  parameter: "param",
  parameters: "param",
  tag: "tag",
  tags: "tag",
  attribute: "attribute",
  attributes: "attribute",
  attr: "attribute",
  run: "attribute",
};
const ATTRIBUTES = ["run_id", "run_name", "status", "user_id", "start_time", "end_time", "created", "Created"] as const;

/** An identifier: `entity.key`, the key backticked, double-quoted or bare; a bare attribute name counts as attribute. */
function parseIdentifier(text: string): { entity: Entity; key: string } {
  const m = /^(?:(\w+)\.)?(?:`([^`]+)`|"([^"]+)"|([\w.\-/ :]+?))$/.exec(text.trim());
  if (!m) return invalidParam(`Invalid identifier '${text}'`);
  const key = m[2] ?? m[3] ?? m[4]!;
  if (m[1] === undefined) {
    if ((ATTRIBUTES as readonly string[]).includes(key)) return { entity: "attribute", key };
    return invalidParam(`Invalid identifier '${text}': expected metrics., params., tags. or attributes. before the key`);
  }
  const entity = ENTITY_OF[m[1].toLowerCase()];
  if (!entity) {
    // A dotted bare key such as metrics.a.b was read as entity "metrics.a"? The regex takes the first word only.
    return invalidParam(`Invalid entity type '${m[1]}'. Valid values are ['metric', 'parameter', 'tag', 'attribute']`);
  }
  if (entity === "attribute" && !(ATTRIBUTES as readonly string[]).includes(key))
    return invalidParam(`Invalid attribute key '${key}' specified. Valid keys are '${ATTRIBUTES.slice(0, 6).join("', '")}'`);
  return { entity, key };
}

function unquote(v: string): string | null {
  const m = /^'((?:[^']|'')*)'$|^"((?:[^"]|"")*)"$/.exec(v.trim());
  if (!m) return null;
  return m[1] !== undefined ? m[1].replace(/''/g, "'") : m[2]!.replace(/""/g, '"');
}

/** The SQL of one search, for a store's dialect and tables. */
type Dialected = { dialect: Dialect; runs: StoreTables["runs"] };

function stringCompare(d: Dialected, col: SQL, op: string, value: string): SQL {
  return stringMatch(d.dialect, col, op, value) ?? invalidParam(`Invalid comparator '${op}' for a string: use =, !=, LIKE or ILIKE`);
}

/** A param's value (its decision's JSON string) as text. */
const paramText = (d: Dialected): SQL =>
  d.dialect === "pg" ? sql`(d.new_value_json::jsonb #>> '{}')` : sql`json_extract(d.new_value_json, '$')`;

/** A text column ordered in byte order on both stores. */
const textOrder = (d: Dialected, col: SQL): SQL => (d.dialect === "pg" ? sql`${col} COLLATE "C"` : col);

function numberCompare(col: SQL, op: string, value: number): SQL {
  if (!["=", "!=", "<", "<=", ">", ">="].includes(op))
    return invalidParam(`Invalid comparator '${op}' for a number: use =, !=, <, <=, > or >=`);
  return sql`${col} ${sql.raw(op)} ${value}`;
}

const CLAUSE = /^(.+?)\s*(<=|>=|!=|=|<|>|\s(?:NOT\s+IN|IN|ILIKE|LIKE)\s)\s*(.+)$/is;

function clauseSql(d: Dialected, clause: string): SQL {
  const { runs } = d;
  const m = CLAUSE.exec(clause);
  if (!m) return invalidParam(`Invalid clause '${clause}': expected <identifier> <comparator> <value>`);
  const { entity, key } = parseIdentifier(m[1]!);
  const op = m[2]!.trim().toUpperCase().replace(/\s+/g, " ");
  const raw = m[3]!.trim();
  if (entity === "metric") {
    const v = Number(raw);
    if (!raw || !Number.isFinite(v)) return invalidParam(`Expected numeric value type for metric '${key}'. Found ${raw}`);
    return sql`EXISTS (SELECT 1 FROM metric_summaries ms WHERE ms.run_id = ${RUN_ID} AND ms.key = ${key} AND ${numberCompare(sql`ms.last`, op, v)})`;
  }
  const str = () => unquote(raw) ?? invalidParam(`Value '${raw}' for ${entity} '${key}' must be a quoted string`);
  if (entity === "param")
    return sql`EXISTS (SELECT 1 FROM decisions d WHERE d.run_id = ${RUN_ID} AND d.kind = 'param' AND d.path = ${key} AND ${stringCompare(d, paramText(d), op, str())})`;
  if (entity === "tag") {
    if (key === "mlflow.runName") return stringCompare(d, sql`${runs.name}`, op, str());
    return sql`EXISTS (SELECT 1 FROM run_tag_values t WHERE t.run_id = ${RUN_ID} AND t.key = ${key} AND ${stringCompare(d, sql`t.value`, op, str())})`;
  }
  switch (key) {
    case "run_id": {
      if (op === "IN" || op === "NOT IN") {
        const list = /^\((.*)\)$/s.exec(raw);
        if (!list) return invalidParam(`Expected a parenthesised list of quoted run ids after ${op}`);
        const ids = splitList(list[1]!).map((s) => numericId(unquote(s) ?? "") ?? -1);
        const inList = sql`${runs.id} IN (${sql.join(
          ids.map((i) => sql`${i}`),
          sql`, `,
        )})`;
        return op === "IN" ? inList : sql`NOT (${inList})`;
      }
      const id = numericId(str()) ?? -1;
      return numberCompare(
        sql`${runs.id}`,
        op === "!=" ? "!=" : op === "=" ? "=" : invalidParam(`Invalid comparator '${op}' for run_id`),
        id,
      );
    }
    case "run_name":
      return stringCompare(d, sql`${runs.name}`, op, str());
    case "status": {
      const s = str();
      const mapped = STATUS_OF_MLFLOW[s as keyof typeof STATUS_OF_MLFLOW];
      if (op === "=" || op === "!=") {
        // RUNNING covers paused runs too; FAILED covers interrupted ones (common.ts MLFLOW_STATUS_OF).
        const all =
          mapped === "running" ? ["running", "paused"] : mapped === "failed" ? ["failed", "interrupted"] : mapped ? [mapped] : ["-"];
        const inList = sql`${runs.status} IN (${sql.join(
          all.map((x) => sql`${x}`),
          sql`, `,
        )})`;
        return op === "=" ? inList : sql`NOT (${inList})`;
      }
      return invalidParam(`Invalid comparator '${op}' for status: use = or !=`);
    }
    case "user_id":
      return stringCompare(d, sql`(SELECT u.email FROM users u WHERE u.id = ${RUN_CREATED_BY})`, op, str());
    default: {
      const v = Number(raw);
      if (!Number.isFinite(v)) return invalidParam(`Expected numeric value type for attribute '${key}'. Found ${raw}`);
      const col = key === "end_time" ? sql`${runs.finishedAt}` : sql`coalesce(${runs.startedAt}, ${runs.createdAt})`;
      if (!["=", "!=", "<", "<=", ">", ">="].includes(op)) return invalidParam(`Invalid comparator '${op}' for ${key}`);
      return sql`${col} ${sql.raw(op)} ${iso(v)}`;
    }
  }
}

function splitList(s: string): string[] {
  const out: string[] = [];
  let cur = "";
  let q: string | null = null;
  for (const ch of s) {
    if (q) {
      cur += ch;
      if (ch === q) q = null;
    } else if (ch === "'" || ch === '"') {
      q = ch;
      cur += ch;
    } else if (ch === ",") {
      out.push(cur.trim());
      cur = "";
    } else cur += ch;
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}

function orderSql(d: Dialected, clause: string): SQL[] {
  const { runs } = d;
  const m = /^\s*(.+?)(?:\s+(ASC|DESC))?\s*$/i.exec(clause);
  if (!m) return invalidParam(`Invalid order_by clause '${clause}'`);
  const { entity, key } = parseIdentifier(m[1]!);
  const dir = sql.raw(m[2]?.toUpperCase() === "DESC" ? "DESC" : "ASC");
  let col: SQL;
  if (entity === "metric") col = sql`(SELECT ms.last FROM metric_summaries ms WHERE ms.run_id = ${RUN_ID} AND ms.key = ${key})`;
  else if (entity === "param")
    col = textOrder(d, sql`(SELECT ${paramText(d)} FROM decisions d WHERE d.run_id = ${RUN_ID} AND d.kind = 'param' AND d.path = ${key})`);
  else if (entity === "tag")
    col = textOrder(
      d,
      key === "mlflow.runName"
        ? sql`${runs.name}`
        : sql`(SELECT t.value FROM run_tag_values t WHERE t.run_id = ${RUN_ID} AND t.key = ${key})`,
    );
  else
    col =
      key === "run_id"
        ? sql`${runs.id}`
        : key === "run_name"
          ? textOrder(d, sql`${runs.name}`)
          : key === "status"
            ? textOrder(d, sql`${runs.status}`)
            : key === "end_time"
              ? sql`${runs.finishedAt}`
              : key === "user_id"
                ? sql`${runs.createdBy}`
                : sql`coalesce(${runs.startedAt}, ${runs.createdAt})`;
  return [sql`(${col}) IS NULL`, sql`${col} ${dir}`];
}

export async function searchRuns(ctx: MlflowStoreCtx, body: unknown): Promise<MlflowEndpoints["runs/search"]["res"]> {
  const input = parseRequest(
    z.object({
      experiment_ids: z.union([z.array(idField), idField.transform((s) => [s])]).default([]),
      filter: z.string().optional(),
      run_view_type: viewTypeField,
      max_results: maxResultsField,
      order_by: z.union([z.array(z.string()), z.string().transform((s) => [s])]).default([]),
      page_token: z.string().optional(),
    }),
    body,
  );
  const store = asStore(ctx.db);
  const { runs } = store.tables;
  const d: Dialected = { dialect: store.dialect, runs };
  const offset = decodePageToken(input.page_token);
  const ids = input.experiment_ids.map((e) => numericId(e) ?? -1);
  const conds: SQL[] = [];
  if (ids.length === 0) return {}; // MLflow: no experiment ids, no runs
  conds.push(
    sql`${runs.experimentId} IN (${sql.join(
      ids.map((i) => sql`${i}`),
      sql`, `,
    )})`,
  );
  if (input.run_view_type === "ACTIVE_ONLY") conds.push(sql`${runs.deletedAt} IS NULL`);
  if (input.run_view_type === "DELETED_ONLY") conds.push(sql`${runs.deletedAt} IS NOT NULL`);
  for (const clause of splitAnd(input.filter ?? "")) conds.push(clauseSql(d, clause));
  const order = input.order_by.flatMap((o) => orderSql(d, o));
  const rows = (await reader(store)
    .select()
    .from(runs)
    .where(sql.join(conds, sql` AND `))
    .orderBy(...(order.length ? order : [sql`coalesce(${runs.startedAt}, ${runs.createdAt}) DESC`]), sql`${runs.id} DESC`)
    .limit(input.max_results + 1)
    .offset(offset)) as RunRow[];
  const page = rows.slice(0, input.max_results);
  const found = await readPart(store, (q) => mlflowRunsOf(q, store.tables, store.dialect, page));
  return {
    ...(found.length ? { runs: found } : {}),
    ...(rows.length > input.max_results ? { next_page_token: encodePageToken(offset + input.max_results) } : {}),
  };
}
