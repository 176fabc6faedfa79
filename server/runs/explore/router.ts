/**
 * Explore runs: the runs table (search with the filter language, column chooser, grouping) and the
 * compare view (side-by-side runs, downsampled curves). Thin: validates input and delegates to
 * server/runs/explore, which only reads. Every procedure needs a signed-in user (any role may read runs).
 *
 * Errors: RunsQueryError and FilterSyntaxError become BAD_REQUEST. A filter error's message is the parser's
 * message ("... at position N"), a newline, the expression, a newline and a caret under position N, so any
 * client (UI, CLI, curl) can point at the fault; the UI reads the position from the caret line.
 */
import { z } from "zod";
import { DomainError } from "@/server/errors";
import { router, signedInProcedure } from "@/server/trpc/init";
import {
  compareRuns,
  exportRuns,
  fetchSeriesOfRuns,
  FilterSyntaxError,
  groupRuns,
  listColumns,
  MAX_COMPARE,
  MIN_COMPARE,
  RunsQueryError,
  searchRuns,
} from "@/server/runs/explore";

/** Runs `f`, turning the query layer's user-facing errors into invalid_input (BAD_REQUEST). */
async function asBadRequest<T>(f: () => T | Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof FilterSyntaxError) throw new DomainError("invalid_input", `${e.message}\n${e.caret()}`, { cause: e });
    if (e instanceof RunsQueryError) throw new DomainError("invalid_input", e.message, { cause: e });
    throw e;
  }
}

const field = z.string().trim().min(1).max(300);
const filter = z.string().max(4000).optional();
const experimentId = z.number().int().positive().optional();
const runIds = z.array(z.number().int().positive()).min(MIN_COMPARE).max(MAX_COMPARE);

export const searchInput = z.object({
  experimentId,
  filter,
  sort: z
    .array(z.object({ field, dir: z.enum(["asc", "desc"]) }))
    .max(5)
    .optional(),
  columns: z.array(field).max(60).optional(),
  offset: z.number().int().min(0).optional(),
  limit: z.number().int().min(1).max(1000).optional(),
});

export const seriesInput = z.object({
  /** Several runs' curves of one metric, in one request (one chart). */
  runIds: z.array(z.number().int().positive()).min(1).max(MAX_COMPARE),
  key: z.string().min(1).max(200),
  xAxis: z.enum(["step", "epoch", "wall"]).optional(),
  from: z.number().finite().optional(),
  to: z.number().finite().optional(),
  maxPoints: z.number().int().min(4).max(20_000).optional(),
});

export const exploreRouter = router({
  /** One page of runs matching the filter, sorted on the server, with the total count. */
  search: signedInProcedure.input(searchInput).query(({ ctx, input }) => asBadRequest(() => searchRuns(ctx.services.db, input))),
  /** The current view (filter, sort, columns) as a CSV or JSON file's text, at most EXPORT_MAX_ROWS runs (says when cut). */
  export: signedInProcedure
    .input(searchInput.omit({ offset: true, limit: true }).extend({ format: z.enum(["csv", "json"]) }))
    .query(({ ctx, input }) => asBadRequest(() => exportRuns(ctx.services.db, input))),
  /** Param paths (with value types) and metric keys present, for the column chooser. */
  columns: signedInProcedure.input(z.object({ experimentId })).query(({ ctx, input }) => listColumns(ctx.services.db, input.experimentId)),
  /** Runs grouped by a hyperparameter (or status/experiment/author) with count and mean/min/max of one metric. */
  group: signedInProcedure
    .input(z.object({ by: field, metric: field, filter, experimentId }))
    .query(({ ctx, input }) => asBadRequest(() => groupRuns(ctx.services.db, input))),
  /** 2..20 runs side by side: params (with differs), data like-for-like, decisions, metric summaries. */
  compare: signedInProcedure
    .input(z.object({ ids: runIds }))
    .query(({ ctx, input }) => asBadRequest(() => compareRuns(ctx.services.db, input.ids))),
  /** One metric of each run, downsampled to maxPoints (default 1,000) over the optional x range [from, to]. */
  // One chart's runs in one call: on PostgreSQL their statements go out batched (series-batch-pg.ts).
  series: signedInProcedure.input(seriesInput).query(({ ctx, input }) =>
    asBadRequest(() => {
      const { runIds: ids, ...rest } = input;
      return fetchSeriesOfRuns(ctx.services.db, ids, rest);
    }),
  ),
});
