/**
 * Issue 16, stateless web servers: two real web server processes (server/tests/web-process-fixture.ts: the app's
 * services behind the same tRPC handler as the Next.js route, each with its own checkpoint timer) on one data
 * directory behave as one. A session made on A works on B and ends on A when signed out on B; failed sign-ins split
 * across A and B meet the shared limit (429 + Retry-After) at the same attempt as on one server; the two timers,
 * racing with a checkpoint due after every event, never sign one tree size twice or over each other, and
 * `audit verify` passes afterwards. No fixed sleeps: every wait is on a condition with a generous timeout.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAppServices, type AppServices } from "@/server/app-context/app-services";
import { ensureDemoUsersAndProject, DEMO_USERS } from "@/server/demo/seed";
import { ACCOUNT_POLICY } from "@/server/auth/throttle";
import { logOrigin, logVerifierKey } from "@/server/audit/witness/checkpoint-note";
import { startWitnessProcess, type WitnessProcess } from "@/server/audit/witness/witness-process";

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-2web-"));
const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-2web-keys-"));
const env = () => {
  const e: NodeJS.ProcessEnv = { ...process.env, RUNLEDGER_DATA_DIR: dataDir, RUNLEDGER_KEY_DIR: keyDir, FIXTURE_CHECKPOINT_MS: "40" };
  delete e.RUNLEDGER_TRUST_PROXY;
  delete e.RUNLEDGER_TRAINING;
  e.RUNLEDGER_WITNESSES = `${witness.url}=${witness.vkey}`;
  return e;
};

type Server = { child: ChildProcess; url: string; out: () => string; err: () => string };

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 45_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function startServer(): Promise<Server> {
  const child = spawn(process.execPath, ["--import", "tsx", "server/tests/web-process-fixture.ts"], {
    env: env(),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const port = await until(`a web server to listen (stderr: ${err})`, () => /listening (\d+)/.exec(out)?.[1], 60_000);
  return { child, url: `http://127.0.0.1:${port}/api/trpc`, out: () => out, err: () => err };
}

async function call(s: Server, proc: string, input?: unknown, cookie?: string) {
  const res = await fetch(`${s.url}/${proc}`, {
    method: input === undefined && proc !== "auth.signOut" ? "GET" : "POST",
    headers: { "content-type": "application/json", ...(cookie ? { cookie } : {}) },
    body: input === undefined && proc !== "auth.signOut" ? undefined : JSON.stringify(input ?? null),
  });
  const body = (await res.json()) as { result?: { data: unknown }; error?: { message: string } };
  return { status: res.status, headers: res.headers, data: body.result?.data, error: body.error?.message };
}

let seeded: AppServices;
let witness: WitnessProcess;
let a: Server;
let b: Server;
const engineer = DEMO_USERS.find((u) => u.role === "engineer")!;
const reviewer = DEMO_USERS.find((u) => u.role === "reviewer")!;

beforeAll(async () => {
  seeded = createAppServices(dataDir, { backend: "cpu", keyDir });
  ensureDemoUsersAndProject(seeded);
  witness = await startWitnessProcess({
    logKey: logVerifierKey(logOrigin(seeded.auditKeys.fingerprint), seeded.auditKeys.publicKey).vkey,
    name: "witness.test/two-servers",
  });
  [a, b] = await Promise.all([startServer(), startServer()]);
}, 120_000);

afterAll(async () => {
  for (const s of [a, b]) s?.child.kill("SIGTERM");
  await witness?.stop();
  if (witness) fs.rmSync(witness.keyDir, { recursive: true, force: true });
  seeded?.db.$client.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
  fs.rmSync(keyDir, { recursive: true, force: true });
});

describe("two web servers on one data directory", () => {
  it("share sessions: signed in on A, the session works on B; signed out on B, it ends on A", async () => {
    const signIn = await call(a, "auth.signIn", { email: engineer.email, password: engineer.password });
    expect(signIn.status).toBe(200);
    const cookie = signIn.headers.getSetCookie()[0]!.split(";")[0]!;
    expect((await call(b, "auth.me", undefined, cookie)).data).toMatchObject({ email: engineer.email });
    expect((await call(b, "auth.signOut", undefined, cookie)).status).toBe(200);
    const after = await call(a, "auth.me", undefined, cookie);
    expect(after.data ?? null).toBeNull();
  }, 60_000);

  it("count failed sign-ins split across A and B against one limit: 429 with Retry-After at the same attempt as one server", async () => {
    const statuses: number[] = [];
    let refused: Awaited<ReturnType<typeof call>> | undefined;
    for (let i = 1; i <= ACCOUNT_POLICY.freeFailures + 1; i++) {
      const r = await call(i % 2 ? a : b, "auth.signIn", { email: reviewer.email, password: `wrong-${i}` });
      statuses.push(r.status);
      refused = r;
    }
    expect(statuses).toEqual([...Array<number>(ACCOUNT_POLICY.freeFailures).fill(401), 429]);
    expect(Number(refused!.headers.get("retry-after"))).toBe(ACCOUNT_POLICY.baseWaitSeconds);
    expect(refused!.error).toMatch(/too many failed sign-ins for this account: try again in \d+ s/);
    // While the account waits, the other server refuses the right password too (the wait is shared).
    const other = await call(a, "auth.signIn", { email: reviewer.email, password: reviewer.password });
    expect(other.status).toBe(429);
    expect(Number(other.headers.get("retry-after"))).toBeGreaterThan(0);
  }, 60_000);

  it("sign each tree size once between their two checkpoint timers, and the ledger verifies", async () => {
    const signedBy = (s: Server) => [...s.out().matchAll(/checkpoint (\d+) (\d+)/g)].length;
    // Events keep coming (a sign-in and sign-out on alternate servers) while both timers race to checkpoint them.
    await until(
      "both servers to sign checkpoints",
      async () => {
        const s = signedBy(a) + signedBy(b) < 8 || signedBy(a) === 0 || signedBy(b) === 0 ? (Math.random() < 0.5 ? a : b) : null;
        if (!s) return true;
        const r = await call(s, "auth.signIn", { email: engineer.email, password: engineer.password });
        await call(s === a ? b : a, "auth.signOut", undefined, r.headers.getSetCookie()[0]!.split(";")[0]!);
        return undefined;
      },
      50_000,
    );
    expect(a.out() + b.out()).not.toMatch(/checkpoint error/);
    const rows = seeded.db.$client
      .prepare(
        `SELECT c.id, c.tree_size AS treeSize, e.seq AS eventSeq FROM audit_checkpoints c
         JOIN audit_events e ON e.action = 'audit.checkpoint' AND e.entity_id = CAST(c.id AS TEXT) ORDER BY c.id`,
      )
      .all() as { id: number; treeSize: number; eventSeq: number }[];
    expect(rows.length).toBeGreaterThanOrEqual(8);
    const sizes = rows.map((r) => r.treeSize);
    expect(new Set(sizes).size).toBe(sizes.length); // no tree size signed twice
    for (let i = 1; i < rows.length; i++) expect(rows[i]!.treeSize).toBeGreaterThan(rows[i - 1]!.treeSize); // in order
    for (const r of rows) expect(r.eventSeq).toBe(r.treeSize + 1); // signed under the write lock: nothing in between
    // Decided under the write lock too: no checkpoint that only re-signs the previous one (a second server's
    // decision taken before the first one's commit would sign a tree whose only new event is that checkpoint).
    const newEvents = seeded.db.$client.prepare(
      "SELECT count(*) AS n FROM audit_events WHERE seq > ? AND seq <= ? AND action != 'audit.checkpoint'",
    );
    for (let i = 1; i < rows.length; i++)
      expect((newEvents.get(rows[i - 1]!.treeSize, rows[i]!.treeSize) as { n: number }).n, `checkpoint #${rows[i]!.id}`).toBeGreaterThan(0);
    // Both servers push their checkpoints to one witness: it ends up cosigning the latest, and no push is
    // recorded as a failure (a server whose older checkpoint was overtaken by the other's is not a rolled-back log).
    const latest = rows.at(-1)!;
    await until("the witness to cosign the latest checkpoint", () =>
      seeded.db.$client.prepare("SELECT 1 FROM witness_cosignatures WHERE tree_size = ?").get(latest.treeSize) ? true : undefined,
    );
    const statuses = seeded.db.$client.prepare("SELECT last_error AS lastError, failing_since AS failingSince FROM witness_status").all();
    expect(statuses, a.err() + b.err()).toEqual([{ lastError: null, failingSince: null }]);
    expect(a.err() + b.err()).not.toMatch(/witness/);
    for (const s of [a, b]) s.child.kill("SIGTERM");
    await until("both servers to exit", () => (a.child.exitCode !== null && b.child.exitCode !== null) || undefined);
    const verify = spawnSync(
      process.execPath,
      ["--import", "tsx", "server/cli/main.ts", "audit", "verify", "--data-dir", dataDir, "--json"],
      {
        env: env(),
        encoding: "utf8",
        timeout: 120_000,
      },
    );
    expect(verify.status, verify.stdout + verify.stderr).toBe(0);
  }, 180_000);
});
