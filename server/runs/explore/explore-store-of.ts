/** The explore queries' view of the app's store (issue 16): the SQLite handle as is, PostgreSQL through its ExploreStore. */
import type { Db } from "@/db/client";
import type { PgDb } from "@/db/pg-client";
import type { Store } from "@/db/store";
import { pgStore as explorePgStore, type StoreOrDb } from "./store";

export function exploreStoreOf(db: Store | Db): StoreOrDb {
  if (!("dialect" in db && "tables" in db)) return db;
  return db.dialect === "pg" ? explorePgStore(db.db as PgDb) : db.db;
}
