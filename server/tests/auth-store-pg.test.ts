/**
 * Sessions and personal access tokens on the store (issue 16): one scenario, run on SQLite (two connections to one
 * file) and on PostgreSQL (two pools: two web servers), gives the same answers, the same refusals and the same
 * ledger events (seq, action, entity, actor, payload; the token prefix is random, so it is compared with the
 * token's own). On PostgreSQL, a session created by one server resolves on the other, a sign-out on one ends it on
 * the other, and one token revoked from both servers at once is revoked once (one token.revoke event).
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { asc, eq } from "drizzle-orm";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { openDatabase, type Db } from "@/db/client";
import { migratePg, openPgDatabase, type PgDb } from "@/db/pg-client";
import { exec, pgStore, rows, sqliteStore, transact, type Store } from "@/db/store";
import type { SignedInActor } from "@/server/app-context/service-context";
import { listSessions, openSession, resolveSession, sessionIdHash } from "@/server/auth/sessions";
import { actorForToken, createToken, revokeToken, tokensOf } from "@/server/auth/tokens";
import { DomainError, type DomainErrorKind } from "@/server/errors";
import { signOut } from "@/server/users/service";
import { createScratchPgDatabase, describePg, type ScratchPgDatabase } from "./pg-test-env";

const AT = "2026-12-04T12:00:00.000Z";
const HOUR = 3_600_000;
const engineer = { id: 1, name: "Erin Engineer", role: "engineer", email: "erin@example.com" } satisfies SignedInActor;
const reviewer = { id: 2, name: "Rey Reviewer", role: "reviewer", email: "rey@example.com" } satisfies SignedInActor;
const admin = { id: 3, name: "Ada Admin", role: "admin", email: "ada@example.com" } satisfies SignedInActor;

/** The users the rows reference, written directly (no events: the scenario's ledger starts at seq 1). */
async function seedUsers(store: Store): Promise<void> {
  const { users } = store.tables;
  await transact(store, function* (tx) {
    for (const a of [engineer, reviewer, admin])
      yield* exec(tx.insert(users).values({ id: a.id, email: a.email, name: a.name, role: a.role, passwordHash: "x", createdAt: AT }));
  });
}

async function refusal(p: Promise<unknown>): Promise<{ kind: DomainErrorKind | "other"; message: string }> {
  try {
    await p;
  } catch (err) {
    return { kind: err instanceof DomainError ? err.kind : "other", message: (err as Error).message };
  }
  throw new Error("expected a refusal");
}

/** The ledger as compared across stores: everything but the hashes (the token prefix in a payload is random). */
async function ledgerOf(store: Store, prefixes: Map<string, string>) {
  const { auditEvents } = store.tables;
  const events = await transact(store, (tx) => rows(tx.select().from(auditEvents).orderBy(asc(auditEvents.seq))));
  return events.map((e) => {
    const payload = JSON.parse(e.payload) as Record<string, unknown>;
    if (typeof payload.prefix === "string") payload.prefix = prefixes.get(payload.prefix) ?? `unknown prefix ${payload.prefix}`;
    return {
      seq: e.seq,
      at: e.at,
      action: e.action,
      entityType: e.entityType,
      entityId: e.entityId,
      actor: [e.actorId, e.actorName, e.role],
      payload,
    };
  });
}

/** The scenario, server A and server B on one store; returns what is compared with the other store. */
async function sessionsAndTokens(a: Store, b: Store) {
  await seedUsers(a);
  const prefixes = new Map<string, string>();

  // A session created by server A resolves on server B, is listed there, and signing out on B ends it on A.
  const session = await openSession(a, engineer.id, "browser on A");
  const onB = await resolveSession(b, session.token);
  expect(onB?.user.email).toBe(engineer.email);
  expect(onB?.session.idHash).toBe(sessionIdHash(session.token));
  const listed = await listSessions(b, engineer.id, session.idHash);
  expect(listed).toEqual([
    {
      id: session.idHash,
      createdAt: AT,
      lastSeenAt: AT,
      endsAt: new Date(Date.parse(AT) + 12 * HOUR).toISOString(),
      endsBecause: "idle",
      userAgent: "browser on A",
      current: true,
    },
  ]);
  await signOut(b, session.token, engineer);
  expect(await resolveSession(a, session.token)).toBeNull();
  expect(await listSessions(a, engineer.id, null)).toEqual([]);

  // Idle for 13 hours: the session has ended, and its row is deleted on lookup.
  const idle = await openSession(a, engineer.id, null);
  expect(await resolveSession(b, idle.token, new Date(Date.parse(AT) + 13 * HOUR))).toBeNull();
  const left = await transact(a, (tx) => rows(tx.select().from(a.tables.sessions)));
  expect(left).toEqual([]);

  // last_seen_at moves forward after a minute.
  const active = await openSession(a, engineer.id, null);
  const later = new Date(Date.parse(AT) + 2 * 60_000);
  expect((await resolveSession(b, active.token, later))?.session.lastSeenAt).toBe(later.toISOString());
  expect((await listSessions(a, engineer.id, null))[0]?.lastSeenAt).toBe(later.toISOString());

  // A token created on A acts on B; revoked on B, it is refused on A; revoking again is refused.
  const token = await createToken(a, engineer, engineer, { name: "training script" });
  prefixes.set(token.prefix, "token 1");
  expect(token.token.startsWith(token.prefix)).toBe(true);
  expect(await actorForToken(b, token.token)).toEqual({ actor: { ...engineer, tokenId: token.id } });
  expect(await tokensOf(b, engineer.id)).toEqual([
    { id: token.id, name: "training script", prefix: token.prefix, createdAt: AT, lastUsedAt: AT, revokedAt: null },
  ]);
  expect(await actorForToken(a, "rlt_not-a-token")).toEqual({ refusal: "unknown" });
  expect(await refusal(revokeToken(b, reviewer, reviewer.id, { tokenId: token.id }))).toEqual({
    kind: "not_found",
    message: expect.stringContaining(`token ${token.id}`),
  });
  expect(await revokeToken(b, engineer, engineer.id, { tokenId: token.id })).toEqual({ ok: true });
  expect(await actorForToken(a, token.token)).toEqual({ refusal: "revoked" });
  expect(await refusal(revokeToken(a, engineer, engineer.id, { tokenId: token.id }))).toEqual({
    kind: "forbidden",
    message: `token ${token.id} (training script) was already revoked at ${AT}`,
  });

  // A disabled user's token is refused, a disabled user gets no new token, and their session does not resolve.
  const reviewerToken = await createToken(a, admin, reviewer, { name: "reviewer script" });
  prefixes.set(reviewerToken.prefix, "token 2");
  const reviewerSession = await openSession(a, reviewer.id, null);
  const { users } = a.tables;
  await transact(a, (tx) => exec(tx.update(users).set({ disabled: true }).where(eq(users.id, reviewer.id))));
  expect(await actorForToken(b, reviewerToken.token)).toEqual({ refusal: "disabled" });
  expect(await refusal(createToken(b, admin, reviewer, {}))).toEqual({
    kind: "forbidden",
    message: `${reviewer.email} is disabled: a disabled account gets no token`,
  });
  expect(await resolveSession(b, reviewerSession.token)).toBeNull();
  expect(await listSessions(a, reviewer.id, null)).toEqual([]);
  expect(await refusal(createToken(a, admin, { id: 99, email: "nobody@example.com" }, {}))).toMatchObject({ kind: "not_found" });

  return { ledger: await ledgerOf(a, prefixes), tokens: (await tokensOf(a, reviewer.id)).map((t) => ({ ...t, prefix: "" })) };
}

const results: Record<"sqlite" | "pg", unknown> = { sqlite: undefined, pg: undefined };

function fixedClock(): void {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(new Date(AT));
  });
  afterEach(() => {
    vi.useRealTimers();
  });
}

describe("sessions and tokens on SQLite (two connections)", () => {
  let dir = "";
  let serverA: Db;
  let serverB: Db;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "rl-auth-store-"));
    serverA = openDatabase(dir);
    serverB = openDatabase(dir);
  });
  afterAll(() => {
    serverA.$client.close();
    serverB.$client.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  fixedClock();

  it("sessions resolve and end across connections; tokens act, are revoked once and refuse a disabled user", async () => {
    results.sqlite = await sessionsAndTokens(sqliteStore(serverA), sqliteStore(serverB));
  });
});

describePg("sessions and tokens on PostgreSQL (two pools)", () => {
  let scratch: ScratchPgDatabase;
  let serverA: PgDb;
  let serverB: PgDb;
  beforeAll(async () => {
    scratch = await createScratchPgDatabase();
    serverA = openPgDatabase(scratch.url, { max: 8 });
    serverB = openPgDatabase(scratch.url, { max: 8 });
    await migratePg(serverA);
  });
  afterAll(async () => {
    await serverA?.$client.end();
    await serverB?.$client.end();
    await scratch?.drop();
  });
  fixedClock();

  it("sessions resolve and end across servers; tokens act, are revoked once and refuse a disabled user", async () => {
    results.pg = await sessionsAndTokens(pgStore(serverA), pgStore(serverB));
  });

  it("gives the same answers and ledger events as SQLite", () => {
    expect(results.sqlite).toBeDefined();
    expect(results.pg).toEqual(results.sqlite);
  });

  it("a token revoked from both servers at once is revoked once: one token.revoke event, the others refused", async () => {
    const [a, b] = [pgStore(serverA), pgStore(serverB)];
    // Every pool connection open first, so the revocations overlap instead of queueing behind connection set-up.
    await Promise.all([serverA, serverB].flatMap((db) => Array.from({ length: 8 }, () => db.$client.query("SELECT pg_sleep(0.05)"))));
    for (let round = 0; round < 5; round++) {
      const token = await createToken(a, engineer, engineer, { name: `raced ${round}` });
      const before = await ledgerOf(a, new Map());
      const outcomes = await Promise.allSettled(
        Array.from({ length: 12 }, (_, i) => revokeToken(i % 2 ? b : a, engineer, engineer.id, { tokenId: token.id })),
      );
      expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(1);
      const refused = outcomes.filter((o): o is PromiseRejectedResult => o.status === "rejected");
      expect(refused.map((o) => (o.reason as DomainError).kind)).toEqual(Array(11).fill("forbidden"));
      const added = (await ledgerOf(a, new Map())).slice(before.length);
      expect(added.map((e) => [e.action, e.entityId])).toEqual([["token.revoke", String(token.id)]]);
    }
  });
});
