/**
 * The one feature of the web app that stays on the SQLite store (issue 16): the MLflow ingest worker, which writes
 * through its own SQLite connection. `sqliteServices` hands the services over typed for SQLite, and on PostgreSQL
 * refuses with a clear error naming the feature (nothing written) instead of failing inside with a type error.
 */
import type { Db } from "@/db/client";
import { isStore } from "@/db/store";
import type { ArtifactStore } from "@/server/artifacts/store";
import { DomainError } from "@/server/errors";
import type { AnyServiceDeps } from "./service-context";

export const isSqliteDb = (db: AnyServiceDeps["db"]): db is Db => !isStore(db);

export function sqliteServices<T extends AnyServiceDeps>(
  services: T,
  feature: string,
): Omit<T, "db" | "artifacts"> & { db: Db; artifacts: ArtifactStore } {
  if (!isSqliteDb(services.db))
    throw new DomainError(
      "conflict",
      `${feature} is not available on the PostgreSQL store yet (issue 16); it works on the embedded SQLite store. Nothing was changed.`,
    );
  return services as Omit<T, "db" | "artifacts"> & { db: Db; artifacts: ArtifactStore };
}
