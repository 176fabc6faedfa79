/**
 * A store: the embedded SQLite file or PostgreSQL (issue 16), and the one way a ported service writes to either.
 *
 * Why a transaction body is a generator and not an `async` callback: better-sqlite3 runs on the event loop's thread,
 * on the one connection every request of the process shares. An async callback yields at each `await` while its
 * transaction is open, and whatever other request resumes in between runs its statements inside that transaction: its
 * write is rolled back with ours after it was told it was stored, and its read sees rows that may never commit (both
 * measured; ARCHITECTURE.md, "The PostgreSQL store"). A body written as a generator yields each statement to the
 * driver instead: on SQLite the driver runs the whole body inside better-sqlite3's synchronous IMMEDIATE transaction,
 * so nothing can run in between, ported and unported code alike; on PostgreSQL it awaits each statement inside a pool
 * transaction. One body, both stores.
 *
 * Invariants:
 * - A body touches the database only through `yield* rows(q)`, `yield* row(q)` and `yield* exec(q)`, built on the
 *   `tx` it is given, and through parts each store implements its own way (`native`, e.g. the ledger's `appendEvent`).
 *   Besides that it does pure computation only (no I/O, no awaits: rule 1 of ARCHITECTURE.md's "Transactions"). `tx` and `store.tables` are typed as SQLite's; on PostgreSQL they are node-postgres drizzle's and
 *   PostgreSQL's tables (the schema-dialects test keeps the keys and columns the same), so a body never calls
 *   `.all()`, `.get()` or `.run()` itself.
 * - SQLite: BEGIN IMMEDIATE, one writer at a time in every process. PostgreSQL: READ COMMITTED; a body that reads and
 *   then writes rows another transaction may write at once names a transaction-scoped advisory lock (`pgLock`), which
 *   gives it the same one-at-a-time guarantee IMMEDIATE gives on SQLite.
 * - A statement's error is thrown into the body at its `yield*`, so a body's try/catch works as in plain code; an error
 *   leaving the body rolls the transaction back on both stores. PostgreSQL aborts a transaction at a failed statement,
 *   so a body that catches one may only return or rethrow, never send another statement.
 */
import { sql, type SQL, type SQLWrapper } from "drizzle-orm";
import type { Db, Tx } from "./client";
import type { PgDb, PgTx } from "./pg-client";
import * as schema from "./schema";
import * as pgSchema from "./schema-pg";

export type Dialect = "sqlite" | "pg";

/** The store's own tables, typed as SQLite's (see the invariants). */
export type StoreTables = typeof schema;

export type Store =
  | { readonly dialect: "sqlite"; readonly db: Db; readonly tables: StoreTables }
  | { readonly dialect: "pg"; readonly db: PgDb; readonly tables: StoreTables };

export function sqliteStore(db: Db): Store {
  return { dialect: "sqlite", db, tables: schema };
}

export function pgStore(db: PgDb): Store {
  return { dialect: "pg", db, tables: pgSchema as unknown as StoreTables };
}

const storesOfSqlite = new WeakMap<Db, Store>();

/** True for a store of either kind, false for a bare SQLite handle. */
export function isStore(s: Store | Db): s is Store {
  return "dialect" in s && "tables" in s;
}

/**
 * Whether the store can still be used: a CLI, a test or a server's shutdown closes SQLite or ends the pool while
 * background work (a training session's last writes, a sweep driver's poll) is still pending.
 */
export function isStoreOpen(store: Store): boolean {
  return store.dialect === "sqlite" ? store.db.$client.open : !(store.db.$client.ending || store.db.$client.ended);
}

/** Services not yet given a store take the SQLite handle as before (one Store per handle, so it can key a cache). */
export function asStore(s: Store | Db): Store {
  if (isStore(s)) return s;
  let store = storesOfSqlite.get(s);
  if (!store) storesOfSqlite.set(s, (store = sqliteStore(s)));
  return store;
}

/**
 * The query builder for reads and single statements outside a transaction: the store's own drizzle handle, typed as
 * SQLite's (TypeScript cannot call a builder through the union of the two). Only ever awaited (see the invariants).
 */
export function reader(store: Store): Db {
  return store.db as unknown as Db;
}

/** A text expression in byte order on both stores (SQLite's BINARY; PostgreSQL's database collation may differ). */
export function byteOrder(store: Store, text: SQLWrapper): SQL {
  return store.dialect === "pg" ? sql`${text} COLLATE "C"` : sql`${text}`;
}

/** One statement handed to the driver by a body, or a store-specific function (`native`). */
export type TxStep =
  { kind: "all" | "get" | "run"; query: unknown } | { kind: "native"; sqlite: (tx: Tx) => unknown; pg: (tx: PgTx) => Promise<unknown> };
/** A transaction body, or a part of one (`yield*` it from the body), returning T. */
export type TxBody<T> = Generator<TxStep, T, unknown>;

/** All rows of a query. */
export function* rows<T>(query: { all(): T[] }): TxBody<T[]> {
  return (yield { kind: "all", query }) as T[];
}

/** The first row of a query, or undefined (limit the query when it may match many rows). */
export function* row<T>(query: { get(): T | undefined }): TxBody<T | undefined> {
  return (yield { kind: "get", query }) as T | undefined;
}

/** A statement run for its effect. */
export function* exec(query: { run(): unknown }): TxBody<void> {
  yield { kind: "run", query };
}

/**
 * A part of a body each store implements its own way (e.g. the ledger append: SQLite's cached statements, PostgreSQL's
 * advisory lock). Both run on the body's transaction and must leave the same rows.
 */
export function* native<T>(impl: { sqlite: (tx: Tx) => T; pg: (tx: PgTx) => Promise<T> }): TxBody<T> {
  return (yield { kind: "native", ...impl }) as T;
}

function runOnSqlite(tx: Tx, step: TxStep): unknown {
  if (step.kind === "native") return step.sqlite(tx);
  const q = step.query as { all(): unknown; get(): unknown; run(): unknown };
  return step.kind === "all" ? q.all() : step.kind === "get" ? q.get() : (q.run(), undefined);
}

async function runOnPg(tx: PgTx, step: TxStep): Promise<unknown> {
  if (step.kind === "native") return step.pg(tx);
  const result = (await (step.query as PromiseLike<unknown>)) as unknown;
  if (step.kind === "all") return result;
  if (step.kind === "get") return Array.isArray(result) ? result[0] : undefined;
  return undefined;
}

/** Carries a body's return value out of a transaction that must roll back (a statement in it failed). */
class RolledBack<T> {
  constructor(readonly value: T) {}
}

/**
 * Drives a body: each yielded statement runs through `runStep` and its result (or error) goes back in. After a failed
 * statement the body may only return or rethrow (see the header); a return then rolls back through RolledBack.
 */
function drive<T>(gen: TxBody<T>, runStep: (step: TxStep) => Promise<unknown>): Promise<T>;
function drive<T>(gen: TxBody<T>, runStep: (step: TxStep) => unknown): T;
function drive<T>(gen: TxBody<T>, runStep: (step: TxStep) => unknown): T | Promise<T> {
  let failed = false;
  const after = (next: IteratorResult<TxStep, T>): { step: TxStep } | { done: T } => {
    if (next.done) {
      if (failed) throw new RolledBack(next.value);
      return { done: next.value };
    }
    if (failed) {
      // Thrown into the body, so its own finally blocks run; SQLite would allow the statement, PostgreSQL would not.
      return after(gen.throw(new Error("a transaction body sent a statement after one of its statements failed")));
    }
    return { step: next.value };
  };
  const loop = (state: { step: TxStep } | { done: T }): T | Promise<T> => {
    while ("step" in state) {
      let value: unknown;
      try {
        value = runStep(state.step);
      } catch (err) {
        failed = true;
        state = after(gen.throw(err));
        continue;
      }
      // PostgreSQL's statements resolve later (runOnPg is async); SQLite's results are plain values.
      if (value instanceof Promise)
        return (value as Promise<unknown>).then(
          (v) => loop(after(gen.next(v))),
          (err: unknown) => {
            failed = true;
            return loop(after(gen.throw(err)));
          },
        );
      state = after(gen.next(value));
    }
    return state.done;
  };
  return loop(after(gen.next()));
}

/**
 * Runs a body, or a part of one, inside a SQLite transaction that synchronous (not yet ported) code already holds: a
 * ported domain's parts (e.g. `appendEvent`, or a service's `function* …(tx)`) stay callable from unported services'
 * `db.transaction((tx) => …)`. A failed statement throws out of it, rolling back the caller's transaction.
 */
export function runOnSqliteTx<T>(tx: Tx, body: TxBody<T>): T {
  try {
    return drive(body, (step) => runOnSqlite(tx, step));
  } catch (err) {
    if (err instanceof RolledBack) throw new Error("a transaction part caught a failed statement; the whole transaction is rolled back");
    throw err;
  }
}

/**
 * Runs a part that only reads, outside any transaction: on SQLite synchronously on the connection, on PostgreSQL each
 * statement awaited on the pool. At READ COMMITTED each statement sees its own snapshot inside a transaction too, so
 * this saves BEGIN/COMMIT and a held connection and changes nothing else; one part then reads the same rows inside a
 * write's transaction and for an answer after it.
 */
export async function readPart<T>(store: Store, part: (q: Tx) => TxBody<T>): Promise<T> {
  try {
    if (store.dialect === "sqlite") {
      const q = store.db as unknown as Tx;
      return drive(part(q), (step) => runOnSqlite(q, step));
    }
    const pool = store.db as unknown as PgTx;
    return await drive(part(pool as unknown as Tx), (step) => runOnPg(pool, step));
  } catch (err) {
    if (err instanceof RolledBack) return err.value as T;
    throw err;
  }
}

/**
 * Runs `body` as one transaction of the store (see the header) and resolves to its return value. A body's uncaught
 * error rolls back and rejects; a body that caught a failed statement and returned rolls back and resolves to what
 * it returned (so a failed statement rolls the transaction back on both stores, as PostgreSQL must).
 */
export async function transact<T>(store: Store, body: (tx: Tx) => TxBody<T>, opts: { pgLock?: bigint } = {}): Promise<T> {
  try {
    if (store.dialect === "sqlite") {
      return store.db.transaction((tx) => drive(body(tx), (step) => runOnSqlite(tx, step)), { behavior: "immediate" });
    }
    return await store.db.transaction(async (pgTx) => {
      if (opts.pgLock !== undefined) await pgTx.execute(sql`SELECT pg_advisory_xact_lock(${opts.pgLock.toString()}::bigint)`);
      return drive(body(pgTx as unknown as Tx), (step) => runOnPg(pgTx, step));
    });
  } catch (err) {
    if (err instanceof RolledBack) return err.value as T;
    throw err;
  }
}
