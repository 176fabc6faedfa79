/**
 * Issue 11, sign-in findings, through the real tRPC router on a real database: length caps before any work, bounded
 * and aggregated failure events (no raw input), throttling with 429 + Retry-After, asynchronous scrypt with the
 * same work for unknown emails, legacy hashes upgraded, no token in response bodies, Secure cookies from the public
 * URL, malformed cookies → 401, idle and absolute session expiry, sessions listed and revoked.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import fs from "node:fs";
import path from "node:path";
import { createHash, randomBytes, scryptSync } from "node:crypto";
import { eq, sql } from "drizzle-orm";
import { auditEvents, sessions, users } from "@/db/schema";
import { createCaller } from "@/server/trpc/root";
import { createContextFromRequest } from "@/server/trpc/init";
import { insertUser } from "@/server/users/service";
import { SYSTEM_ACTOR } from "@/server/audit/ledger";
import { identifierDigest } from "@/server/auth/signin-failures";
import { applyCheckpointPolicy } from "@/server/audit/checkpoint-policy";
import { safeNextPath } from "@/contracts/safe-next-path";
import { createTestApp, type TestApp } from "./test-app";

let app: TestApp;
beforeAll(() => {
  app = createTestApp();
});
afterAll(() => app.close());
afterEach(() => {
  delete process.env.RUNLEDGER_PUBLIC_URL;
});

/** A caller as an anonymous browser at `address`, collecting response headers. */
function browser(address: string, cookie?: string) {
  const resHeaders = new Headers();
  const req = new Request("http://127.0.0.1/api/trpc/x", {
    headers: { "x-forwarded-for": address, "user-agent": "vitest", ...(cookie ? { cookie } : {}) },
  });
  const caller = createCaller(() => createContextFromRequest(app, req, resHeaders));
  return { caller, resHeaders };
}

const eventCount = () =>
  app.db
    .select({ n: sql<number>`count(*)` })
    .from(auditEvents)
    .get()!.n;
const dbBytes = () =>
  ["runledger.sqlite", "runledger.sqlite-wal"].reduce(
    (sum, f) => sum + (fs.existsSync(path.join(app.dataDir, f)) ? fs.statSync(path.join(app.dataDir, f)).size : 0),
    0,
  );
const tokenFrom = (h: Headers) => /runledger_session=([^;]*)/.exec(h.get("set-cookie") ?? "")?.[1] ?? "";

describe("length caps", () => {
  it("refuses a 50 MB email before touching the database: no event, no growth", async () => {
    applyCheckpointPolicy(app); // the first checkpoint is due on any mutation; sign it now so only this request counts
    const before = { events: eventCount(), bytes: dbBytes() };
    const { caller } = browser("198.51.100.1");
    await expect(caller.auth.signIn({ email: `${"a".repeat(50 * 1024 * 1024)}@x.org`, password: "x" })).rejects.toMatchObject({
      code: "BAD_REQUEST",
      message: expect.stringContaining("an email address is at most 254 characters"),
    });
    await expect(caller.auth.signIn({ email: "a@x.org", password: "p".repeat(1025) })).rejects.toMatchObject({
      code: "BAD_REQUEST",
      message: expect.stringContaining("a password is at most 1024 characters"),
    });
    expect(eventCount()).toBe(before.events);
    expect(dbBytes()).toBe(before.bytes);
  });
});

describe("failed sign-ins in the ledger", () => {
  it("records a digest and a count per window at thresholds, never the typed email", async () => {
    const email = `nobody-${randomBytes(4).toString("hex")}@example.org`;
    const before = eventCount();
    for (let i = 0; i < 5; i++)
      await expect(browser(`198.51.100.${10 + i}`).caller.auth.signIn({ email, password: "wrong-password" })).rejects.toMatchObject({
        code: "UNAUTHORIZED",
      });
    const events = app.db
      .select()
      .from(auditEvents)
      .where(sql`${auditEvents.seq} > ${before}`)
      .all();
    expect(events.map((e) => e.action)).toEqual(["user.signInFailed", "user.signInFailed"]); // at 1 and at 5
    for (const e of events) {
      expect(e.payload).not.toContain(email);
      expect(e.payload).not.toContain("wrong-password");
      expect(e.entityId).toBe(identifierDigest(email));
    }
    expect(JSON.parse(events[1]!.payload)).toMatchObject({ identifier: identifierDigest(email), failures: 5, windowMinutes: 10 });
  });
});

describe("throttling", () => {
  it("answers 429 with Retry-After well before 30 wrong passwords, for a known account", async () => {
    const codes: string[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 30; i++) {
      const { caller, resHeaders } = browser(`203.0.113.${i}`); // a new address each time: the account limit must hold alone
      try {
        await caller.auth.signIn({ email: "auditor@runledger.local", password: `guess-${i}` });
        codes.push("OK");
      } catch (err) {
        codes.push((err as { code: string }).code);
        if ((err as { code: string }).code === "TOO_MANY_REQUESTS") retryAfter ??= resHeaders.get("retry-after");
      }
    }
    expect(codes.slice(0, 5)).toEqual(Array(5).fill("UNAUTHORIZED"));
    expect(codes.slice(5)).toEqual(Array(25).fill("TOO_MANY_REQUESTS"));
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    // The real owner is throttled too until the wait ends (that is the point), then signs in and the count resets.
  });

  it("throttles one client address trying many accounts", async () => {
    const codes: string[] = [];
    for (let i = 0; i < 15; i++) {
      try {
        await browser("192.0.2.77").caller.auth.signIn({ email: `spray-${i}@example.org`, password: "x" });
      } catch (err) {
        codes.push((err as { code: string }).code);
      }
    }
    expect(codes.slice(0, 10)).toEqual(Array(10).fill("UNAUTHORIZED"));
    expect(codes.slice(10)).toEqual(Array(5).fill("TOO_MANY_REQUESTS"));
  });
});

describe("password hashing", () => {
  it("hashes off the main thread: the event loop turns while a sign-in is being checked", async () => {
    let settled = false;
    const attempt = browser("198.51.100.200")
      .caller.auth.signIn({ email: "engineer@runledger.local", password: "engineer-demo-pass" })
      .finally(() => (settled = true));
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, 20));
    expect(settled).toBe(false);
    await attempt;
  });

  it("does the same work for an unknown email as for a known one", async () => {
    const time = async (email: string, address: string) => {
      const t0 = performance.now();
      await browser(address)
        .caller.auth.signIn({ email, password: "not-the-password" })
        .catch(() => undefined);
      return performance.now() - t0;
    };
    // Two of each, interleaved; the faster of each pair is compared (less noise from other processes).
    const samples = { known: [] as number[], unknown: [] as number[] };
    for (let i = 0; i < 2; i++) {
      samples.known.push(await time("reviewer@runledger.local", `198.51.100.${201 + i}`));
      samples.unknown.push(await time("no-such-person@runledger.local", `198.51.100.${203 + i}`));
    }
    expect(Math.min(...samples.known)).toBeGreaterThan(100); // N=2^17 scrypt
    expect(Math.min(...samples.unknown)).toBeGreaterThan(Math.min(...samples.known) * 0.5);
  });

  it("accepts a first-release hash (N=2^14) and upgrades it after a successful sign-in", async () => {
    const salt = randomBytes(16);
    const legacy = `scrypt$16384$8$1$${salt.toString("base64")}$${scryptSync("legacy-pass-1", salt, 32, { N: 16384, r: 8, p: 1 }).toString("base64")}`;
    await insertUser(app.db, SYSTEM_ACTOR, { email: "legacy@runledger.local", name: "Lee Legacy", role: "engineer", passwordHash: legacy });
    await browser("198.51.100.203").caller.auth.signIn({ email: "legacy@runledger.local", password: "legacy-pass-1" });
    const stored = app.db.select().from(users).where(eq(users.email, "legacy@runledger.local")).get()!.passwordHash;
    expect(stored).toMatch(/^scrypt\$131072\$8\$1\$/);
    await expect(
      browser("198.51.100.204").caller.auth.signIn({ email: "legacy@runledger.local", password: "legacy-pass-1" }),
    ).resolves.toMatchObject({ user: { email: "legacy@runledger.local" } });
  });
});

describe("session cookie", () => {
  it("puts the token only in Set-Cookie, never in the response body", async () => {
    const { caller, resHeaders } = browser("198.51.100.210");
    const body = await caller.auth.signIn({ email: "engineer@runledger.local", password: "engineer-demo-pass" });
    const token = tokenFrom(resHeaders);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(JSON.stringify(body)).not.toContain(token);
    expect(resHeaders.get("set-cookie")).toMatch(/HttpOnly; SameSite=Lax; Max-Age=\d+$/);
  });

  it("is Secure whenever RUNLEDGER_PUBLIC_URL is https", async () => {
    process.env.RUNLEDGER_PUBLIC_URL = "https://runledger.example.org";
    const { caller, resHeaders } = browser("198.51.100.211");
    await caller.auth.signIn({ email: "engineer@runledger.local", password: "engineer-demo-pass" });
    expect(resHeaders.get("set-cookie")).toMatch(/; Secure$/);
  });

  it("answers a malformed cookie with UNAUTHORIZED (no exception while building the context) and clears it", async () => {
    for (const bad of ["%E0%A4%A", "not-a-token", `${"A".repeat(43)}==`, "x".repeat(5000)]) {
      const { caller, resHeaders } = browser("198.51.100.212", `runledger_session=${bad}`);
      await expect(caller.projects.list()).rejects.toMatchObject({
        code: "UNAUTHORIZED",
        message: expect.stringMatching(/session cookie is not valid/),
      });
      expect(resHeaders.get("set-cookie")).toMatch(/runledger_session=; .*Max-Age=0/);
      await expect(caller.auth.me()).resolves.toBeNull();
    }
  });
});

describe("session expiry and revocation", () => {
  async function signedInBrowser(email: string, password: string, address: string) {
    const { caller, resHeaders } = browser(address);
    await caller.auth.signIn({ email, password });
    const token = tokenFrom(resHeaders);
    return { token, as: () => browser(address, `runledger_session=${token}`).caller };
  }

  it("ends a session idle for more than 12 hours and one past its 7-day absolute expiry", async () => {
    const idle = await signedInBrowser("engineer@runledger.local", "engineer-demo-pass", "198.51.100.220");
    const old = await signedInBrowser("engineer@runledger.local", "engineer-demo-pass", "198.51.100.221");
    await expect(idle.as().projects.list()).resolves.toBeDefined();
    const h = (t: string) => createHash("sha256").update(t).digest("hex");
    app.db.$client
      .prepare("UPDATE sessions SET last_seen_at = ? WHERE id_hash = ?")
      .run(new Date(Date.now() - 13 * 3_600_000).toISOString(), h(idle.token));
    app.db.$client
      .prepare("UPDATE sessions SET created_at = ?, last_seen_at = ?, expires_at = ? WHERE id_hash = ?")
      .run(
        new Date(Date.now() - 8 * 86_400_000).toISOString(),
        new Date().toISOString(),
        new Date(Date.now() - 86_400_000).toISOString(),
        h(old.token),
      );
    const idleHash = h(idle.token);
    await expect(idle.as().projects.list()).rejects.toMatchObject({
      code: "UNAUTHORIZED",
      message: expect.stringMatching(/session has ended/),
    });
    await expect(old.as().projects.list()).rejects.toMatchObject({ code: "UNAUTHORIZED" });
    expect(app.db.select().from(sessions).where(eq(sessions.idHash, idleHash)).get()).toBeUndefined();
  });

  it("lists a user's sessions and revokes one, and an admin revokes all of a user's sessions", async () => {
    const a = await signedInBrowser("reviewer2@runledger.local", "reviewer2-demo-pass", "198.51.100.230");
    const b = await signedInBrowser("reviewer2@runledger.local", "reviewer2-demo-pass", "198.51.100.231");
    const listed = await a.as().auth.sessions();
    expect(listed.length).toBeGreaterThanOrEqual(2);
    expect(listed.filter((s) => s.current)).toHaveLength(1);
    expect(JSON.stringify(listed)).not.toContain(a.token);
    const other = listed.find((s) => !s.current)!;
    await a.as().auth.revokeSession({ sessionId: other.id });
    await expect(b.as().projects.list()).rejects.toMatchObject({ code: "UNAUTHORIZED" });
    await expect(a.as().projects.list()).resolves.toBeDefined();
    const userId = app.db.select().from(users).where(eq(users.email, "reviewer2@runledger.local")).get()!.id;
    await app.as("admin").users.revokeSessions({ userId });
    await expect(a.as().projects.list()).rejects.toMatchObject({ code: "UNAUTHORIZED" });
    await expect(app.as("engineer").users.revokeSessions({ userId })).rejects.toMatchObject({ code: "FORBIDDEN" });
  });
});

describe("redirect after sign-in", () => {
  it("keeps same-origin paths and turns every off-site form into /", () => {
    for (const ok of ["/", "/runs", "/runs?view=table#top", "/models/iris%20v2"]) expect(safeNextPath(ok)).toBe(ok);
    for (const bad of [
      "/\\evil.example/phish",
      "//evil.example",
      "\\\\evil.example",
      "https://evil.example",
      "javascript:alert(1)",
      "/%2F%2Fevil.example",
      "/%5Cevil.example",
      "/%252F%252Fevil.example",
      "/\t/evil.example",
      "/.//evil.example",
      "http:/evil.example",
      "",
      null,
      "x".repeat(3000),
    ]) {
      expect(safeNextPath(bad), String(bad).slice(0, 40)).toBe("/");
    }
  });
});
