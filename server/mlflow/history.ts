/**
 * metrics/get-history: every point of one metric of a run, in step order. Without max_results and page_token the
 * whole series is answered (as MLflow does); with either, pages of at most max_results (default 25,000) points,
 * the page token naming the step to continue after.
 */
import { z } from "zod";
import { MLFLOW_LIMITS, type MlflowEndpoints } from "@/contracts/mlflow/types";
import { invalidParam } from "./errors";
import { idField, int64, parseRequest, type MlflowCtx } from "./common";
import { runRow } from "./runs";

export function getMetricHistory(ctx: MlflowCtx, body: unknown): MlflowEndpoints["metrics/get-history"]["res"] {
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
  const run = runRow(ctx.db, id);
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
  const rows = ctx.db.$client
    .prepare(
      `SELECT step, value, wall_time_ms FROM metrics WHERE run_id = ? AND key = ? AND step > ? ORDER BY step${paged ? " LIMIT ?" : ""}`,
    )
    .raw(true)
    .all(...(paged ? [run.id, input.metric_key, after, limit + 1] : [run.id, input.metric_key, after])) as [number, number, number][];
  const page = paged ? rows.slice(0, limit) : rows;
  const metrics = page.map(([step, value, timestamp]) => ({ key: input.metric_key, value, timestamp, step }));
  return {
    ...(metrics.length ? { metrics } : {}),
    ...(paged && rows.length > limit
      ? { next_page_token: Buffer.from(JSON.stringify({ afterStep: page.at(-1)![0] })).toString("base64url") }
      : {}),
  };
}
