/**
 * What a service ported onto the store (issue 16, db/store.ts) needs: the store and who is acting. `db` is still
 * the SQLite handle everywhere in the app (routers pass `ctx.services`, a ServiceContext, unchanged); tests and, later,
 * the app pass a PostgreSQL store in its place. Ported services call `asStore(ctx.db)`.
 */
import type { Db } from "@/db/client";
import type { Store } from "@/db/store";
import type { SignedInActor } from "./service-context";

export type StoreServiceContext = { db: Store | Db; actor: SignedInActor };
