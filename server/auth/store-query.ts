/**
 * Reads and single statements outside a transaction, on either store (issue 16).
 *
 * db/store.ts types a store's `db` as the union of the two drizzle handles, whose builders TypeScript cannot call
 * through the union. As for `store.tables`, the builder is typed as SQLite's (the schema-dialects test keeps the two
 * schemas' keys and columns the same); on PostgreSQL it is node-postgres drizzle. Invariant: callers only `await` the
 * queries they build on it, never `.all()`, `.get()` or `.run()`, which PostgreSQL's builder lacks.
 */
import type { Db } from "@/db/client";
import type { Store } from "@/db/store";

export function awaitedBuilder(store: Store): Db {
  return store.db as unknown as Db;
}
