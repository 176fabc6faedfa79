/**
 * metrics/get-history: every point of one metric of a run, in step order. Without max_results and page_token the
 * whole series is answered (as MLflow does); with either, pages of at most max_results (default 25,000) points,
 * the page token naming the step to continue after.
 *
 * Speed (issue 15: 100,000 points under 200 ms): the points are one range of the metrics table (WITHOUT ROWID,
 * clustered on run, key, step), and SQLite writes the answer's JSON array itself (json_group_array over the range
 * in step order), handed over as bytes (a BLOB) and sent as they are (JsonText): no row objects, no JSON.stringify,
 * no string to re-encode, no copy. SQLite
 * writes each REAL with as many digits as it takes to read back the same double, so a client parses the same
 * numbers as from JSON.stringify's text (a test compares them; a whole-number value may read "1.0" instead of "1").
 */
import { and, asc, eq, gt } from "drizzle-orm";
import { z } from "zod";
import { cachedStatement, type Db } from "@/db/client";
import { asStore, reader, type Store } from "@/db/store";
import { MLFLOW_LIMITS } from "@/contracts/mlflow/types";
import { invalidParam } from "./errors";
import { idField, int64, JsonText, parseRequest, readPart, type MlflowStoreCtx } from "./common";
import { runRowIn } from "./runs";

const RANGE = "FROM metrics WHERE run_id = ? AND key = ? AND step > ? ORDER BY step";
const POINTS_JSON = (range: string) =>
  `SELECT CAST(json_group_array(json_object('key', key, 'value', value, 'timestamp', wall_time_ms, 'step', step)) AS BLOB)
     FROM (SELECT key, value, wall_time_ms, step ${range})`;

/**
 * On the store (issue 16): SQLite as described above; PostgreSQL reads the page's rows (one more than the page, to
 * know whether a next page exists, in one statement) and writes the JSON in JS. Both answer the same points, in the
 * same order and members (a whole-number value may read "1.0" from SQLite and "1" from PostgreSQL: the same number).
 */
export async function getMetricHistory(ctx: MlflowStoreCtx, body: unknown): Promise<JsonText> {
  const input = parseRequest(
    z.object({
      run_id: idField.optional(),
      run_uuid: idField.optional(),
      metric_key: z.string(),
      max_results: int64.optional(),
      page_token: z.string().optional(),
    }),
    body,
  );
  const id = input.run_id ?? input.run_uuid;
  if (id === undefined)
    return invalidParam("Missing value for required parameter 'run_id'. See the API docs for more information about request parameters.");
  const store = asStore(ctx.db);
  const run = await readPart(store, (q) => runRowIn(q, store.tables, id));
  const paged = input.max_results !== undefined || input.page_token !== undefined;
  const limit = input.max_results ?? MLFLOW_LIMITS.metricHistoryMaxResults;
  if (paged && (limit < 1 || limit > MLFLOW_LIMITS.metricHistoryMaxResults))
    invalidParam(`max_results must be between 1 and ${MLFLOW_LIMITS.metricHistoryMaxResults}`);
  let after = -Infinity;
  if (input.page_token) {
    try {
      const v = JSON.parse(Buffer.from(input.page_token, "base64url").toString("utf8")) as { afterStep?: unknown };
      if (typeof v.afterStep !== "number" || !Number.isInteger(v.afterStep)) throw new Error("bad token");
      after = v.afterStep;
    } catch {
      invalidParam(`Invalid page token '${input.page_token.slice(0, 40)}'`);
    }
  }
  if (store.dialect === "pg") return pgHistory(store, run.id, input.metric_key, after, paged ? limit : undefined);
  return sqliteHistory(store.db, run.id, input.metric_key, after, paged, limit);
}

const tokenAfter = (step: number): string => JSON.stringify(Buffer.from(JSON.stringify({ afterStep: step })).toString("base64url"));

function sqliteHistory(db: Db, runId: number, key: string, after: number, paged: boolean, limit: number): JsonText {
  const run = { id: runId };
  const input = { metric_key: key };
  const sqlite = db.$client;
  // The page and the check for a next page read the same snapshot (one read transaction).
  return sqlite.transaction(() => {
    const points = (
      paged
        ? cachedStatement(sqlite, POINTS_JSON(`${RANGE} LIMIT ?`), "pluck").get(run.id, input.metric_key, after, limit)
        : cachedStatement(sqlite, POINTS_JSON(RANGE), "pluck").get(run.id, input.metric_key, after)
    ) as Buffer;
    if (points.length <= 2) return new JsonText("{}"); // "[]": no points (MLflow leaves the field out)
    let next = "";
    if (paged) {
      // The page's last step and, when there is one, the step after it.
      const edge = cachedStatement(sqlite, `SELECT step ${RANGE} LIMIT 2 OFFSET ?`, "pluck").all(
        run.id,
        input.metric_key,
        after,
        limit - 1,
      );
      if (edge.length === 2) next = `,"next_page_token":${tokenAfter(edge[0] as number)}`;
    }
    return new JsonText('{"metrics":', points, `${next}}`);
  })();
}

async function pgHistory(store: Store, runId: number, key: string, after: number, limit: number | undefined): Promise<JsonText> {
  const run = { id: runId };
  const { metrics } = store.tables;
  const range = reader(store)
    .select({ key: metrics.key, value: metrics.value, timestamp: metrics.wallTimeMs, step: metrics.step })
    .from(metrics)
    .where(and(eq(metrics.runId, run.id), eq(metrics.key, key), after === -Infinity ? undefined : gt(metrics.step, after)))
    .orderBy(asc(metrics.step));
  const found = limit === undefined ? await range : await range.limit(limit + 1);
  const page = limit === undefined ? found : found.slice(0, limit);
  if (page.length === 0) return new JsonText("{}");
  const next = limit !== undefined && found.length > limit ? `,"next_page_token":${tokenAfter(page.at(-1)!.step)}` : "";
  return new JsonText('{"metrics":', JSON.stringify(page), `${next}}`);
}
