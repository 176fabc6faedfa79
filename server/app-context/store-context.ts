/**
 * What a service ported onto the store (issue 16, db/store.ts) needs: the store and who is acting. `db` is the
 * SQLite handle or a store of either kind: the web app passes whichever it runs on (`ctx.services`, an
 * AnyServiceContext), the CLI and most tests the SQLite handle. Ported services call `asStore(ctx.db)`.
 */
import type { Db } from "@/db/client";
import type { Store } from "@/db/store";
import type { SignedInActor } from "./service-context";

export type StoreServiceContext = { db: Store | Db; actor: SignedInActor };
