/**
 * The few features of the web app that do not run on the PostgreSQL store yet (issue 16) reach their SQLite-only
 * service through `sqliteServices`: on SQLite it hands the same services over, typed for SQLite; on PostgreSQL it
 * refuses with a clear error naming the feature, instead of failing somewhere inside with a type error. Nothing is
 * written before the refusal. Each call site goes away when its service is ported.
 */
import type { Db } from "@/db/client";
import type { ArtifactStore } from "@/server/artifacts/store";
import { DomainError } from "@/server/errors";
import type { AnyServiceDeps } from "./service-context";

export const isSqliteDb = (db: AnyServiceDeps["db"]): db is Db => !("dialect" in db && "tables" in db);

export function sqliteServices<T extends AnyServiceDeps>(
  services: T,
  feature: string,
): Omit<T, "db" | "artifacts"> & { db: Db; artifacts: ArtifactStore } {
  if (!isSqliteDb(services.db)) throw notOnPostgresYet(feature);
  return services as Omit<T, "db" | "artifacts"> & { db: Db; artifacts: ArtifactStore };
}

/** The SQLite handle of the services, or the same refusal. */
export function sqliteDb(services: AnyServiceDeps, feature: string): Db {
  return sqliteServices(services, feature).db;
}

export function notOnPostgresYet(feature: string): DomainError {
  return new DomainError(
    "conflict",
    `${feature} is not available on the PostgreSQL store yet (issue 16); it works on the embedded SQLite store. Nothing was changed.`,
  );
}

/** For route handlers that answer without tRPC: the SQLite services, or the refusal as a JSON 409 response. */
export function sqliteServicesOrResponse<T extends AnyServiceDeps>(
  services: T,
  feature: string,
): (Omit<T, "db" | "artifacts"> & { db: Db; artifacts: ArtifactStore }) | Response {
  if (isSqliteDb(services.db)) return sqliteServices(services, feature);
  return Response.json({ error: notOnPostgresYet(feature).message }, { status: 409 });
}
