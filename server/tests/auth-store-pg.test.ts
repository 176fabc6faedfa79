/**
 * Sessions and personal access tokens on the store (issue 16): one scenario, run on SQLite (two connections to one
 * file) and on PostgreSQL (two pools: two web servers), gives the same answers, the same refusals and the same
 * ledger events (seq, action, entity, actor, payload; the token prefix is random, so it is compared with the
 * token's own). On PostgreSQL, a session created by one server resolves on the other, a sign-out on one ends it on
 * the other, and one token revoked from both servers at once is revoked once (one token.revoke event).
 * The same for users and signing in: insertUser, signIn (wrong password, unknown email, must change password,
 * disabled), sign-out on the other server, and on PostgreSQL one email created from both servers at once gives one
 * user and conflicts, and concurrent sign-ins on both servers each get a session the other server resolves.
 * And user administration (create, list with session counts, update, reset, own password change, sessions): same
 * answers and events on both stores; on PostgreSQL two administrators disabling each other from two servers at once
 * leave one enabled administrator.
 */
import { describe, expect, it } from "vitest";
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
import { type DomainError } from "@/server/errors";
import { SYSTEM_ACTOR } from "@/server/audit/ledger";
import { hashPasswordSync } from "@/server/auth/password";
import { accountStatus, insertUser, sessionForToken, signIn, signOut } from "@/server/users/service";
import { changeOwnPassword, createUser, listUsers, resetPassword, revokeSessions, sessionsOf, updateUser } from "@/server/users/admin";
import { createScratchPgDatabase, describePg, type ScratchPgDatabase } from "./pg-test-env";
import { fixedDateForEachTest, refusal } from "./store-test-env";

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

const CLIENT = { address: "192.0.2.1", userAgent: "browser on A" };

/** Users and signing in, server A and server B on one new store; returns the ledger compared with the other store. */
async function usersAndSignIn(a: Store, b: Store) {
  const erin = await insertUser(a, SYSTEM_ACTOR, {
    email: " Erin@Example.com ",
    name: "Erin Engineer",
    role: "engineer",
    password: "erin-secret-1",
  });
  expect(erin).toMatchObject({ email: "erin@example.com", disabled: false, mustChangePassword: false, createdAt: AT });
  const rey = await insertUser(b, SYSTEM_ACTOR, {
    email: "rey@example.com",
    name: "Rey Reviewer",
    role: "reviewer",
    password: "rey-secret-1",
    mustChangePassword: true,
  });
  expect(
    await refusal(insertUser(b, SYSTEM_ACTOR, { email: "ERIN@example.com", name: "Again", role: "auditor", passwordHash: "x" })),
  ).toEqual({
    kind: "conflict",
    message: "a user with email erin@example.com already exists",
  });

  // Signed in on A, the session resolves on B; signed out on B, it has ended on A.
  const signedIn = await signIn(a, "erin@example.com", "erin-secret-1", CLIENT);
  if (!signedIn.ok) throw new Error(`sign-in refused: ${signedIn.reason}`);
  const erinActor = { id: erin.id, name: "Erin Engineer", role: "engineer", email: "erin@example.com" };
  expect(signedIn).toMatchObject({
    user: erinActor,
    mustChangePassword: false,
    expiresAt: new Date(Date.parse(AT) + 7 * 24 * HOUR).toISOString(),
  });
  expect(await sessionForToken(b, signedIn.token)).toEqual({
    user: erinActor,
    idHash: sessionIdHash(signedIn.token),
    mustChangePassword: false,
    endsAt: new Date(Date.parse(AT) + 12 * HOUR),
  });
  expect(await accountStatus(b, erin.id)).toEqual({ role: "engineer", name: "Erin Engineer", disabled: false, mustChangePassword: false });
  await signOut(b, signedIn.token, signedIn.user);
  expect(await sessionForToken(a, signedIn.token)).toBeNull();

  // Refusals: a wrong password and an unknown email read the same, and are recorded as signInFailed.
  expect(await signIn(a, "erin@example.com", "not-her-password", CLIENT)).toEqual({ ok: false, reason: "wrong email or password" });
  expect(await signIn(a, "nobody@example.com", "not-a-password", CLIENT)).toEqual({ ok: false, reason: "wrong email or password" });

  // A user who must change their password signs in and is told so; disabled, the right password is refused.
  const reySignedIn = await signIn(b, "rey@example.com", "rey-secret-1", CLIENT);
  expect(reySignedIn).toMatchObject({ ok: true, mustChangePassword: true });
  const { users } = a.tables;
  await transact(a, (tx) => exec(tx.update(users).set({ disabled: true }).where(eq(users.id, rey.id))));
  expect(await signIn(a, "rey@example.com", "rey-secret-1", CLIENT)).toEqual({ ok: false, reason: "disabled" });
  if (reySignedIn.ok) expect(await sessionForToken(a, reySignedIn.token)).toBeNull();
  expect(await accountStatus(a, 999)).toBeNull();

  return { ledger: await ledgerOf(a, new Map()) };
}

/** User administration, server A and server B on one new store; returns the ledger compared with the other store. */
async function userAdministration(a: Store, b: Store) {
  const hash = hashPasswordSync("admin-secret-1");
  const ada = await insertUser(a, SYSTEM_ACTOR, { email: "ada@example.com", name: "Ada Admin", role: "admin", passwordHash: hash });
  const adaActor = { id: ada.id, name: ada.name, role: "admin", email: ada.email } satisfies SignedInActor;

  const created = await createUser(b, adaActor, { email: "Nia@example.com", name: "Nia New", role: "engineer" });
  expect(created.user).toEqual({ id: created.user.id, email: "nia@example.com", name: "Nia New", role: "engineer" });
  const nia = { ...created.user, role: "engineer" as const } satisfies SignedInActor;
  const [first, second] = [await openSession(a, nia.id, "one"), await openSession(b, nia.id, "two")];
  const listed = await listUsers(b);
  expect(listed.map((u) => [u.email, u.role, u.disabled, u.mustChangePassword, u.activeSessions])).toEqual([
    ["ada@example.com", "admin", false, false, 0],
    ["nia@example.com", "engineer", false, true, 2],
  ]);

  // Her own password: the temporary one is checked, her other session ends, this one stays.
  expect(
    await changeOwnPassword(a, nia, { currentPassword: created.temporaryPassword, newPassword: "nia-own-secret-2" }, first.idHash, {
      address: "192.0.2.7",
      userAgent: null,
    }),
  ).toEqual({ ok: true, otherSessionsRevoked: 1 });
  expect((await sessionsOf(b, nia, nia.id, first.idHash)).map((x) => [x.id, x.current])).toEqual([[first.idHash, true]]);
  expect(await resolveSession(a, second.token)).toBeNull();
  expect(await refusal(sessionsOf(a, nia, ada.id, null))).toMatchObject({ kind: "forbidden" });

  // Sessions ended by an administrator: one by id (unknown id refused), then all.
  const third = await openSession(b, nia.id, "three");
  expect(await revokeSessions(a, adaActor, { userId: nia.id, sessionId: third.idHash })).toEqual({ revoked: 1 });
  expect(await refusal(revokeSessions(b, adaActor, { userId: nia.id, sessionId: third.idHash }))).toMatchObject({ kind: "not_found" });
  expect(await revokeSessions(b, adaActor, { userId: nia.id })).toEqual({ revoked: 1 });

  // Role and disabled flag, with the refusals; disabling ends her sessions.
  await openSession(a, nia.id, "four");
  expect(await updateUser(b, adaActor, { userId: nia.id, disabled: true })).toEqual({
    id: nia.id,
    email: nia.email,
    role: "engineer",
    disabled: true,
    sessionsRevoked: 1,
  });
  expect(await refusal(updateUser(a, adaActor, { userId: nia.id, disabled: true }))).toMatchObject({ kind: "conflict" });
  expect(await refusal(updateUser(a, adaActor, { userId: ada.id, disabled: true }))).toMatchObject({ kind: "forbidden" });
  expect(await refusal(updateUser(a, adaActor, { userId: ada.id, role: "auditor" }))).toEqual({
    kind: "conflict",
    message: "ada@example.com is the last enabled administrator: make someone else an administrator first",
  });
  expect(await refusal(updateUser(a, nia, { userId: nia.id, disabled: false }))).toMatchObject({ kind: "forbidden" });
  expect(await updateUser(a, adaActor, { userId: nia.id, disabled: false, role: "reviewer" })).toMatchObject({
    role: "reviewer",
    disabled: false,
  });

  // A reset gives a temporary password she must change, and ends her sessions.
  await openSession(a, nia.id, "five");
  const reset = await resetPassword(b, adaActor, { userId: nia.id });
  expect(reset).toMatchObject({ user: { id: nia.id, email: nia.email, name: "Nia New" }, sessionsRevoked: 1 });
  expect(await refusal(resetPassword(b, adaActor, { userId: ada.id }))).toMatchObject({ kind: "invalid_input" });
  expect(await accountStatus(a, nia.id)).toEqual({ role: "reviewer", name: "Nia New", disabled: false, mustChangePassword: true });
  expect(await refusal(updateUser(a, adaActor, { userId: 999, disabled: true }))).toMatchObject({ kind: "not_found" });

  return { ledger: await ledgerOf(a, new Map()) };
}

type Compared = { sessionsAndTokens?: unknown; usersAndSignIn?: unknown; userAdministration?: unknown };
const results: Record<"sqlite" | "pg", Compared> = { sqlite: {}, pg: {} };

type TwoServers = { a: Store; b: Store; close: () => Promise<void> };

/** A new SQLite data directory opened twice (two connections, as two processes would). */
function sqliteServers(): TwoServers {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rl-auth-store-"));
  const [serverA, serverB]: Db[] = [openDatabase(dir), openDatabase(dir)];
  return {
    a: sqliteStore(serverA!),
    b: sqliteStore(serverB!),
    close: async () => {
      serverA!.$client.close();
      serverB!.$client.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A new PostgreSQL database and two pools on it (two web servers). */
async function pgServers(): Promise<TwoServers> {
  const scratch: ScratchPgDatabase = await createScratchPgDatabase();
  const serverA: PgDb = openPgDatabase(scratch.url, { max: 8 });
  const serverB: PgDb = openPgDatabase(scratch.url, { max: 8 });
  await migratePg(serverA);
  // Every pool connection open first, so concurrent bodies overlap instead of queueing behind connection set-up.
  await Promise.all([serverA, serverB].flatMap((db) => Array.from({ length: 8 }, () => db.$client.query("SELECT pg_sleep(0.05)"))));
  return {
    a: pgStore(serverA),
    b: pgStore(serverB),
    close: async () => {
      await serverA.$client.end();
      await serverB.$client.end();
      await scratch.drop();
    },
  };
}

/** Runs `body` on two new servers of the store, closing them after. */
async function onNewServers<T>(open: () => TwoServers | Promise<TwoServers>, body: (a: Store, b: Store) => Promise<T>): Promise<T> {
  const servers = await open();
  try {
    return await body(servers.a, servers.b);
  } finally {
    await servers.close();
  }
}

describe("sessions, tokens and sign-in on SQLite (two connections)", () => {
  fixedDateForEachTest(AT);

  it("sessions resolve and end across connections; tokens act, are revoked once and refuse a disabled user", async () => {
    results.sqlite.sessionsAndTokens = await onNewServers(sqliteServers, sessionsAndTokens);
  });

  it("users are created once per email; sign-in on one connection, sign-out on the other; refusals recorded", async () => {
    results.sqlite.usersAndSignIn = await onNewServers(sqliteServers, usersAndSignIn);
  });

  it("user administration: create, list, own password, sessions, role and disabled flag, reset, with their refusals", async () => {
    results.sqlite.userAdministration = await onNewServers(sqliteServers, userAdministration);
  });
});

describePg("sessions, tokens and sign-in on PostgreSQL (two pools)", () => {
  fixedDateForEachTest(AT);

  it("sessions resolve and end across servers; tokens act, are revoked once and refuse a disabled user", async () => {
    results.pg.sessionsAndTokens = await onNewServers(pgServers, sessionsAndTokens);
  });

  it("users are created once per email; sign-in on one server, sign-out on the other; refusals recorded", async () => {
    results.pg.usersAndSignIn = await onNewServers(pgServers, usersAndSignIn);
  });

  it("user administration: create, list, own password, sessions, role and disabled flag, reset, with their refusals", async () => {
    results.pg.userAdministration = await onNewServers(pgServers, userAdministration);
  });

  it("gives the same answers and ledger events as SQLite", () => {
    expect(results.sqlite.sessionsAndTokens).toBeDefined();
    expect(results.sqlite.usersAndSignIn).toBeDefined();
    expect(results.sqlite.userAdministration).toBeDefined();
    expect(results.pg).toEqual(results.sqlite);
  });

  it("a token revoked from both servers at once is revoked once: one token.revoke event, the others refused", async () => {
    await onNewServers(pgServers, async (a, b) => {
      await seedUsers(a);
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

  it("one email created from both servers at once gives one user and conflicts; concurrent sign-ins each get a session", async () => {
    await onNewServers(pgServers, async (a, b) => {
      const hash = hashPasswordSync("shared-secret-1");
      const outcomes = await Promise.allSettled(
        Array.from({ length: 12 }, (_, i) =>
          insertUser(i % 2 ? b : a, SYSTEM_ACTOR, { email: "same@example.com", name: `Same ${i}`, role: "engineer", passwordHash: hash }),
        ),
      );
      expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(1);
      const refused = outcomes.filter((o): o is PromiseRejectedResult => o.status === "rejected");
      expect(refused.map((o) => (o.reason as DomainError).kind)).toEqual(Array(11).fill("conflict"));

      const signIns = await Promise.all(
        Array.from({ length: 4 }, (_, i) =>
          signIn(i % 2 ? b : a, "same@example.com", "shared-secret-1", { address: `192.0.2.${10 + i}`, userAgent: null }),
        ),
      );
      const tokens = signIns.map((r) => (r.ok ? r.token : `refused: ${r.reason}`));
      expect(new Set(tokens).size).toBe(4);
      for (const [i, token] of tokens.entries()) expect((await sessionForToken(i % 2 ? a : b, token))?.user.email).toBe("same@example.com");
      const ledger = await ledgerOf(a, new Map());
      expect(ledger.map((e) => e.seq)).toEqual(Array.from({ length: 5 }, (_, i) => i + 1));
      expect(ledger.map((e) => e.action).sort()).toEqual(["user.create", "user.signIn", "user.signIn", "user.signIn", "user.signIn"]);
    });
  });
  it("two administrators disabling each other from two servers at once leave one enabled administrator", async () => {
    await onNewServers(pgServers, async (a, b) => {
      for (let round = 0; round < 5; round++) {
        const [one, two] = await Promise.all(
          ["one", "two"].map((n) =>
            insertUser(a, SYSTEM_ACTOR, { email: `${n}.${round}@example.com`, name: `Admin ${n}`, role: "admin", passwordHash: "x" }),
          ),
        );
        const asActor = (u: typeof one) => ({ id: u!.id, name: u!.name, role: "admin" as const, email: u!.email });
        // Earlier rounds' administrators are disabled first, so these two are the only enabled ones.
        const outcomes = await Promise.allSettled([
          updateUser(a, asActor(one), { userId: two!.id, disabled: true }),
          updateUser(b, asActor(two), { userId: one!.id, disabled: true }),
        ]);
        expect(outcomes.map((o) => o.status).sort()).toEqual(["fulfilled", "rejected"]);
        const refused = outcomes.find((o): o is PromiseRejectedResult => o.status === "rejected")!;
        expect((refused.reason as DomainError).message).toMatch(/is the last enabled administrator/);
        const { users } = a.tables;
        const enabledAdmins = await transact(a, (tx) => rows(tx.select().from(users).where(eq(users.disabled, false))));
        expect(enabledAdmins).toHaveLength(1);
        await transact(a, (tx) => exec(tx.update(users).set({ disabled: true }).where(eq(users.id, enabledAdmins[0]!.id))));
      }
    });
  });
});
