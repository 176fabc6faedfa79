/**
 * The stores a ported service's suite runs on (issue 16, db/store.ts): a SQLite file in a fresh data directory, and
 * two pools on one scratch PostgreSQL database, standing for two web servers. Each helper registers its own
 * beforeAll/afterAll in the enclosing describe; the getters are valid inside its tests.
 */
import { afterAll, afterEach, beforeAll, beforeEach, vi } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { openDatabase, type Db } from "@/db/client";
import { migratePg, openPgDatabase, type PgDb } from "@/db/pg-client";
import { exec, pgStore, sqliteStore, transact, type Store } from "@/db/store";
import type { SignedInActor } from "@/server/app-context/service-context";
import { DomainError, type DomainErrorKind } from "@/server/errors";
import { createScratchPgDatabase, type ScratchPgDatabase } from "./pg-test-env";

/** A migrated SQLite database in a new data directory (removed after the suite). */
export function sqliteForSuite(prefix: string): { db: () => Db; store: () => Store; dir: () => string } {
  let dir = "";
  let db: Db | undefined;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    db = openDatabase(dir);
  });
  afterAll(() => {
    db?.$client.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });
  return { db: () => db!, store: () => sqliteStore(db!), dir: () => dir };
}

/** A new directory under the temporary directory for the enclosing describe (removed after it); valid inside its tests. */
export function tempDirForSuite(prefix: string): () => string {
  let dir = "";
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  return () => dir;
}

/** Two pools ("server A" and "server B") on one migrated scratch PostgreSQL database (dropped after the suite). */
export function twoPgServersForSuite(): { a: () => PgDb; b: () => PgDb; stores: () => [Store, Store] } {
  let scratch: ScratchPgDatabase | undefined;
  let a: PgDb | undefined;
  let b: PgDb | undefined;
  beforeAll(async () => {
    scratch = await createScratchPgDatabase();
    a = openPgDatabase(scratch.url, { max: 8 });
    b = openPgDatabase(scratch.url, { max: 8 });
    await migratePg(a);
  });
  afterAll(async () => {
    await a?.$client.end();
    await b?.$client.end();
    await scratch?.drop();
  });
  return { a: () => a!, b: () => b!, stores: () => [pgStore(a!), pgStore(b!)] };
}

/** A failed statement's message with its cause's (drizzle wraps the driver's error; a trigger's text is the cause's). */
export async function failureText(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    const cause = err instanceof Error && err.cause instanceof Error ? ` ${err.cause.message}` : "";
    return `${err instanceof Error ? err.message : String(err)}${cause}`;
  }
  throw new Error("expected the statement to fail");
}

/** How a service call was refused: its DomainError's kind and message ("other" for any other error), to compare stores. */
export async function refusal(p: Promise<unknown>): Promise<{ kind: DomainErrorKind | "other"; message: string }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof DomainError) return { kind: err.kind, message: err.message };
    return { kind: "other", message: err instanceof Error ? err.message : String(err) };
  }
  throw new Error("expected a refusal");
}

/** Fixes Date (only Date: timers still run) at `at` for each test of the enclosing describe. */
export function fixedDateForEachTest(at: string): void {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(new Date(at));
  });
  afterEach(() => vi.useRealTimers());
}

/** The people the store suites act as (ids 1 to 3 once `seedPeopleAndDataset` has run). */
export const TEST_PEOPLE = {
  engineer: { id: 1, name: "Erin Engineer", role: "engineer", email: "erin@example.com" },
  reviewer: { id: 2, name: "Rey Reviewer", role: "reviewer", email: "rey@example.com" },
  auditor: { id: 3, name: "Aud Auditor", role: "auditor", email: "aud@example.com" },
} satisfies Record<string, SignedInActor>;

/** TEST_PEOPLE, written directly: suites that use them test other domains. Idempotent. */
export async function seedPeople(store: Store, opts: { at: string; passwordHash: string }): Promise<void> {
  const { users } = store.tables;
  await transact(store, function* (tx) {
    for (const a of Object.values(TEST_PEOPLE))
      yield* exec(
        tx
          .insert(users)
          .values({ id: a.id, email: a.email, name: a.name, role: a.role, passwordHash: opts.passwordHash, createdAt: opts.at })
          .onConflictDoNothing(),
      );
  });
}

/** TEST_PEOPLE and one dataset (`datasetId`), written directly: suites that use them test other domains. Idempotent. */
export async function seedPeopleAndDataset(store: Store, opts: { at: string; passwordHash: string; datasetId: number }): Promise<void> {
  await seedPeople(store, opts);
  const { datasets } = store.tables;
  await transact(store, function* (tx) {
    yield* exec(
      tx
        .insert(datasets)
        .values({
          id: opts.datasetId,
          name: "Iris",
          source: "upload",
          origin: "",
          licence: "",
          sha256: "0".repeat(64),
          byteSize: 1,
          schemaJson: "{}",
          rowCount: 1,
          createdBy: TEST_PEOPLE.engineer.id,
          createdAt: opts.at,
        })
        .onConflictDoNothing(),
    );
  });
}
