/**
 * What every tracking API handler shares: the caller (a token's user, role re-read per request), request parsing
 * with zod into MLflow's INVALID_PARAMETER_VALUE answers, the MLflow project, and how Runledger rows read as MLflow
 * entities (ids, names, statuses, times).
 *
 * Mapping (decided for issue 15, documented in server/mlflow/README.md):
 * - An MLflow experiment IS a Runledger experiment; its experiment_id is the experiment's id as a string.
 *   Experiments created through the API go into the project "MLflow" (created on first use, project.create event).
 *   Experiments of other projects are visible too, named "<project>/<experiment>".
 * - An MLflow run IS a Runledger run of origin "api" (config API_RUN_CONFIG, seed 0); run_id is its id as a string.
 *   Embedded runs are readable through the API: their params are their flattened config (run_params), as strings.
 * - user_id is the email of the run's author; artifact URIs are MLflow proxy URIs, mlflow-artifacts:/<experiment_id>/<run_id>/artifacts (server/mlflow/artifacts.ts).
 */
import { z } from "zod";
import { eq } from "drizzle-orm";
import type { Db, Tx } from "@/db/client";
import { row, type Store, type StoreTables, type TxBody } from "@/db/store";
import { insertProject } from "@/server/projects/service";
import type { ServiceContext, SignedInActor } from "@/server/app-context/service-context";
import type { RunStatus as MlflowRunStatus } from "@/contracts/mlflow/types";
import type { RunStatus } from "@/db/schema";
import { MlflowError } from "./errors";
import type { AnyArtifactStore } from "@/server/artifacts/async-store";

export const MLFLOW_PROJECT = "MLflow";

/** The caller of one API request: the services, and the token's user with the token id (events record it). */
export type MlflowCtx = ServiceContext & { actor: SignedInActor & { tokenId: number } };

/**
 * The caller as the endpoints ported onto the store (issue 16, db/store.ts) take it: `db` is the SQLite handle (the
 * app) or a Store (SQLite or PostgreSQL), and either artifact store. MlflowCtx (a SQLite handle) is one; the parts
 * still on SQLite only (the ingest worker) keep taking MlflowCtx.
 */
export type MlflowStoreCtx = Omit<MlflowCtx, "db" | "artifacts"> & { db: Store | Db; artifacts: AnyArtifactStore };

/** Reads outside a transaction with a transaction part (db/store.ts); re-exported for the API's modules. */
export { readPart } from "@/db/store";

/** Roles that may write through the API (the roles that launch runs in the app); every signed-in role may read. */
export const WRITER_ROLES = ["engineer"] as const;

export function requireWriter(ctx: Pick<MlflowCtx, "actor">, doing: string): void {
  if (!(WRITER_ROLES as readonly string[]).includes(ctx.actor.role))
    throw new MlflowError("PERMISSION_DENIED", `a ${ctx.actor.role} cannot ${doing} (needs: ${WRITER_ROLES.join(" or ")})`);
}

/** Parses a request with zod; the first problem becomes MLflow's INVALID_PARAMETER_VALUE message. */
export function parseRequest<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const param = issue.path.join(".") || "request";
  const missing = issue.code === "invalid_type" && issue.message.includes("undefined");
  throw new MlflowError(
    "INVALID_PARAMETER_VALUE",
    missing
      ? `Missing value for required parameter '${param}'. See the API docs for more information about request parameters.`
      : `Invalid value for parameter '${param}': ${issue.message}. See the API docs for more information about request parameters.`,
  );
}

/** proto3 JSON int64: a number or a decimal string. */
export const int64 = z.union([
  z.number().int(),
  z
    .string()
    .regex(/^-?\d+$/, "expected an integer")
    .transform(Number),
]);
/** An id as MLflow sends it (a string; numbers are accepted as well). */
export const idField = z.union([z.string(), z.number().int().transform(String)]);
export const keyValue = z.object({ key: z.string(), value: z.string().default("") });

/**
 * An answer already written as JSON, in parts sent one after the other (get-history: the opening, the 100,000 points
 * as SQLite wrote them in UTF-8, the closing): the route sends the parts as they are, so the points are never copied
 * into one buffer or a string (at 8.5 MB a copy costs milliseconds and, as external memory, a garbage collection).
 */
export class JsonText {
  readonly parts: readonly (string | Uint8Array)[];
  constructor(...parts: (string | Uint8Array)[]) {
    this.parts = parts;
  }
}

/** A positive Runledger id from an MLflow id string, or null. */
export function numericId(id: string): number | null {
  return /^\d{1,15}$/.test(id) ? Number(id) : null;
}

export const ms = (iso: string | null | undefined): number | undefined => (iso ? Date.parse(iso) : undefined);
export const iso = (msValue: number): string => new Date(msValue).toISOString();

export const MLFLOW_STATUS_OF: Record<RunStatus, MlflowRunStatus> = {
  queued: "SCHEDULED",
  running: "RUNNING",
  paused: "RUNNING",
  interrupted: "FAILED",
  completed: "FINISHED",
  failed: "FAILED",
  cancelled: "KILLED",
};
export const STATUS_OF_MLFLOW: Record<MlflowRunStatus, RunStatus> = {
  SCHEDULED: "queued",
  RUNNING: "running",
  FINISHED: "completed",
  FAILED: "failed",
  KILLED: "cancelled",
};

/** The MLflow name of an experiment: its own name in the MLflow project, "<project>/<name>" elsewhere. */
export function mlflowExperimentName(projectName: string, name: string): string {
  return projectName === MLFLOW_PROJECT ? name : `${projectName}/${name}`;
}

/**
 * The MLflow project's id, created on first use inside the caller's transaction (a part, db/store.ts) through the
 * projects service's own insert (insertProject: the project.create event). The caller's role is the API's (an
 * engineer, requireWriter), not createProject's check (engineers and admins): an API writer needs no project rights.
 */
export function* ensureMlflowProject(tx: Tx, t: StoreTables, actor: MlflowCtx["actor"]): TxBody<number> {
  const found = yield* row(tx.select({ id: t.projects.id }).from(t.projects).where(eq(t.projects.name, MLFLOW_PROJECT)).limit(1));
  if (found) return found.id;
  const description = "Experiments created through the MLflow-compatible tracking API (/api/2.0/mlflow/).";
  return (yield* insertProject(tx, t, actor, { name: MLFLOW_PROJECT, description })).id;
}
