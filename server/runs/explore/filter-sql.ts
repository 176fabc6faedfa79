/**
 * Turns a parsed filter into a drizzle `sql` WHERE fragment over the `runs` table.
 *
 * Invariants:
 * - Every value from the user (strings, numbers, param paths, metric keys) is a bound parameter.
 *   Field names select fixed SQL from the switch below; nothing the user typed is spliced into SQL.
 * - Param and metric tests are uncorrelated `runs.id IN (SELECT run_id ... WHERE key = ? AND ...)`
 *   subqueries: SQLite evaluates each once and can use the (key, value) indexes of run_params and
 *   metric_summaries.
 * - NOT is pushed down to the comparisons (De Morgan), so each comparison knows whether it is negated.
 *   A missing field never matches a comparison, negated or not: `params.x != 1` and `NOT params.x = 1`
 *   both select runs that HAVE x with a value other than 1, never runs without x (a run whose config
 *   lacks a setting is not evidence about it). The same holds for metrics and `finished` (unfinished runs).
 *   Fields every run has (name, status, author, experiment, created, id) negate plainly, and `tag` is set
 *   membership: `tag != "x"` / `NOT tag = "x"` select runs without the tag "x".
 * - Comparisons are typed: a number compares with a param's numeric value, a string with its text value
 *   (true/false compare as 1/0). `~` is a case-insensitive contains (ASCII case folding), bound as
 *   '%' + escaped value + '%', so % and _ in the value match literally.
 * - The SQL is built from the store's tables and fragments (store.ts): one text for SQLite and PostgreSQL except
 *   the fragments (ASCII lower(), byte-order comparison of text ranges).
 */
import { sql, type SQL, type AnyColumn } from "drizzle-orm";
import { SQLITE_SQL, type ExploreStore } from "./store";
import type { FilterNode, Literal, CompareOp } from "./filter-parser";
import { parseIsoInstant } from "./filter-parser";
import type { FieldRef } from "./fields";

/** A positive comparison; "!=", "!~" and NOT IN become a positive op plus negation. */
type Op = "=" | "<" | "<=" | ">" | ">=" | "~" | "in";
type Test = { op: Op; values: Literal[] };

type Ctx = Pick<ExploreStore, "t" | "f">;

export function filterToSql(node: FilterNode, store: Ctx = SQLITE_SQL): SQL {
  return build(store, node, false);
}

function build(c: Ctx, node: FilterNode, negate: boolean): SQL {
  switch (node.kind) {
    case "and":
    case "or": {
      // De Morgan: NOT (a AND b) = NOT a OR NOT b.
      const joiner = (node.kind === "and") !== negate ? sql` AND ` : sql` OR `;
      return sql`(${sql.join(
        node.children.map((child) => build(c, child, negate)),
        joiner,
      )})`;
    }
    case "not":
      return build(c, node.operand, !negate);
    case "compare": {
      const [op, flips] = positive(node.op);
      return leaf(c, node.field, { op, values: [node.value] }, negate !== flips);
    }
    case "in":
      return leaf(c, node.field, { op: "in", values: node.values }, negate !== node.negated);
  }
}

function positive(op: CompareOp): [Op, boolean] {
  if (op === "!=") return ["=", true];
  if (op === "!~") return ["~", true];
  return [op, false];
}

function leaf(c: Ctx, field: FieldRef, test: Test, negate: boolean): SQL {
  const { runs, runParams, metricSummaries, runTags, users, experiments } = c.t;
  switch (field.kind) {
    case "param": {
      const cond = paramCondition(c, test);
      if (!negate)
        return sql`${runs.id} IN (SELECT ${runParams.runId} FROM ${runParams} WHERE ${runParams.key} = ${field.path} AND ${cond})`;
      return sql`${runs.id} IN (SELECT ${runParams.runId} FROM ${runParams} WHERE ${runParams.key} = ${field.path} AND (${runParams.valueNum} IS NOT NULL OR ${runParams.valueText} IS NOT NULL) AND ${cond} IS NOT TRUE)`;
    }
    case "metric": {
      const column = metricSummaries[field.stat];
      const cond = valueCondition(c, column, test, (l) => l.value);
      return sql`${runs.id} IN (SELECT ${metricSummaries.runId} FROM ${metricSummaries} WHERE ${metricSummaries.key} = ${field.key} AND ${negate ? sql`NOT ${cond}` : cond})`;
    }
    case "finished": {
      const cond = dateCondition(c, runs.finishedAt, test);
      return negate ? sql`(${runs.finishedAt} IS NOT NULL AND NOT ${cond})` : cond;
    }
    case "tag": {
      const inner = sql`SELECT ${runTags.runId} FROM ${runTags} WHERE ${anyOf(test, (t) => valueCondition(c, runTags.tag, t, (l) => l.value))}`;
      return negate ? sql`${runs.id} NOT IN (${inner})` : sql`${runs.id} IN (${inner})`;
    }
    case "author": {
      const cond = anyOf(test, (t) =>
        t.op === "~"
          ? sql`(${textContains(c, users.name, t.values)} OR ${textContains(c, users.email, t.values)})`
          : sql`(${c.f.lowerAscii(users.name)} = ${lowerText(t)} OR ${c.f.lowerAscii(users.email)} = ${lowerText(t)})`,
      );
      const inner = sql`SELECT ${users.id} FROM ${users} WHERE ${cond}`;
      return negate ? sql`${runs.createdBy} NOT IN (${inner})` : sql`${runs.createdBy} IN (${inner})`;
    }
    case "experiment": {
      const cond = anyOf(test, (t) =>
        t.values[0]?.type === "number"
          ? valueCondition(c, runs.experimentId, t, (l) => l.value)
          : sql`${runs.experimentId} IN (SELECT ${experiments.id} FROM ${experiments} WHERE ${valueCondition(c, experiments.name, t, (l) => l.value)})`,
      );
      return negate ? sql`NOT ${cond}` : cond;
    }
    case "name":
    case "status":
    case "id": {
      const column = field.kind === "name" ? runs.name : field.kind === "status" ? runs.status : runs.id;
      const cond = valueCondition(c, column, test, (l) =>
        field.kind === "status" && l.type === "string" ? l.value.toLowerCase() : l.value,
      );
      return negate ? sql`NOT ${cond}` : cond;
    }
    case "created": {
      const cond = dateCondition(c, runs.createdAt, test);
      return negate ? sql`NOT ${cond}` : cond;
    }
  }
}

/** Splits an IN list into one test per value when a field's equality is more than `column = ?`. */
function anyOf(test: Test, one: (t: Test) => SQL): SQL {
  if (test.op !== "in") return one(test);
  return sql`(${sql.join(
    test.values.map((v) => one({ op: "=", values: [v] })),
    sql` OR `,
  )})`;
}

function paramCondition(c: Ctx, test: Test): SQL {
  const { runParams } = c.t;
  const numeric = (l: Literal) => (l.type === "boolean" ? (l.value ? 1 : 0) : l.value);
  if (test.op === "in") {
    const nums = test.values.filter((v) => v.type !== "string");
    const texts = test.values.filter((v) => v.type === "string");
    const parts: SQL[] = [];
    if (nums.length) parts.push(sql`${runParams.valueNum} IN (${list(nums.map(numeric))})`);
    if (texts.length) parts.push(sql`${runParams.valueText} IN (${list(texts.map((t) => t.value))})`);
    return sql`(${sql.join(parts, sql` OR `)})`;
  }
  const value = test.values[0] as Literal;
  return value.type === "string"
    ? valueCondition(c, runParams.valueText, test, (l) => l.value)
    : valueCondition(c, runParams.valueNum, test, numeric);
}

function valueCondition(c: Ctx, column: AnyColumn, test: Test, bind: (l: Literal) => unknown): SQL {
  const v = test.values[0] as Literal;
  // A text range compares in byte order on both stores (equality needs no collation).
  const key = v.type === "string" ? c.f.textKey(column) : column;
  switch (test.op) {
    case "=":
      return sql`(${column} = ${bind(v)})`;
    case "<":
      return sql`(${key} < ${bind(v)})`;
    case "<=":
      return sql`(${key} <= ${bind(v)})`;
    case ">":
      return sql`(${key} > ${bind(v)})`;
    case ">=":
      return sql`(${key} >= ${bind(v)})`;
    case "~":
      return textContains(c, column, test.values);
    case "in":
      return sql`(${column} IN (${list(test.values.map(bind))}))`;
  }
}

/** Dates compare as ISO-8601 UTC text (how every timestamp is stored); a bare date means the whole UTC day. */
function dateCondition(c: Ctx, column: AnyColumn, test: Test): SQL {
  return anyOf(test, (t) => {
    const v = t.values[0] as Literal;
    const at = parseIsoInstant(String(v.value));
    if (!at) throw new Error(`unparsable date reached SQL: ${String(v.value)}`); // the parser validates dates first
    switch (t.op) {
      case "=":
        return at.day ? sql`(${column} >= ${at.start} AND ${column} < ${at.end})` : sql`(${column} = ${at.start})`;
      case "<":
        return sql`(${column} < ${at.start})`;
      case "<=":
        return at.day ? sql`(${column} < ${at.end})` : sql`(${column} <= ${at.start})`;
      case ">":
        return at.day ? sql`(${column} >= ${at.end})` : sql`(${column} > ${at.start})`;
      case ">=":
        return sql`(${column} >= ${at.start})`;
      default:
        throw new Error(`operator ${t.op} reached SQL for a date`); // the parser rejects it
    }
  });
}

function textContains(c: Ctx, column: AnyColumn, values: Literal[]): SQL {
  return sql`(${c.f.lowerAscii(column)} LIKE ${containsPattern(String((values[0] as Literal).value))} ESCAPE '\\')`;
}

/** '%' + value with LIKE's wildcards escaped + '%', lower-cased: "50%_off" matches literally. */
export function containsPattern(value: string): string {
  return `%${value.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

function lowerText(t: Test): string {
  return String((t.values[0] as Literal).value).toLowerCase();
}

function list(values: unknown[]): SQL {
  return sql.join(
    values.map((v) => sql`${v}`),
    sql`, `,
  );
}
