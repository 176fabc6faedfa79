/**
 * A fresh demo install, as `npm start` makes it (`cli seed`: the demo users, project, experiment and the trained demo
 * run; server/demo/seed.ts), on SQLite and on PostgreSQL, as real processes: every demo user was created through the
 * users service's insertUser/insertUserWithEvent (the part `users create` goes through too), so each has exactly one
 * user.create event whose email, name and role are the row's, and `audit verify` finds the content intact. A user
 * row written without its event (outside the app) is then found by the same verification (content check of people,
 * server/audit/content/check-people.ts), so a seed that created people without events could not pass here.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import pg from "pg";
import { DEMO_USERS } from "@/server/auth/demo-users";
import { keyFingerprintsInDir } from "@/server/audit/key-custody";
import { loadKeyFromDir } from "@/server/audit/keys";
import { createScratchPgDatabase, describePg, type ScratchPgDatabase } from "./pg-test-env";
import { runCli } from "./cli-process";

vi.mock("server-only", () => ({}));

type VerifyJson = {
  ok: boolean;
  levels: { chain: { ok: boolean }; content: { ok: boolean; problems: { entityType: string; entityId: string; message: string }[] } };
};
type PersonRow = { id: number; email: string; name: string; role: string };
type CreateEvent = { entity_id: string; payload: string };

/** Each user with its user.create events' payloads (email, name, role). */
function peopleAndEvents(users: PersonRow[], events: CreateEvent[]) {
  return users
    .map((u) => ({
      user: { email: u.email, name: u.name, role: u.role },
      events: events
        .filter((e) => e.entity_id === String(u.id))
        .map((e) => {
          const p = JSON.parse(e.payload) as { email: string; name: string; role: string };
          return { email: p.email, name: p.name, role: p.role };
        }),
    }))
    .sort((a, b) => (a.user.email < b.user.email ? -1 : 1));
}

const expectedDemoPeople = () =>
  DEMO_USERS.map((d) => ({ email: d.email, name: d.name, role: d.role }))
    .sort((a, b) => (a.email < b.email ? -1 : 1))
    .map((user) => ({ user, events: [user] }));

function checkVerified(out: { code: number | null; stdout: string; stderr: string }): VerifyJson {
  expect(out.code, out.stderr).toBe(0);
  const r = JSON.parse(out.stdout) as VerifyJson;
  expect(r.ok).toBe(true);
  expect(r.levels.content).toMatchObject({ ok: true, problems: [] });
  return r;
}

function checkGhostFound(out: { code: number | null; stdout: string; stderr: string }, ghostId: number): void {
  expect(out.code, out.stderr).toBe(1);
  const r = JSON.parse(out.stdout) as VerifyJson;
  expect(r.ok).toBe(false);
  expect(r.levels.content.problems).toEqual([
    expect.objectContaining({ entityType: "user", entityId: String(ghostId), message: expect.stringMatching(/no user\.create event/) }),
  ]);
}

const GHOST = { email: "ghost@runledger.local", name: "Written outside the app", role: "admin" };

describe("a fresh demo install on SQLite (cli seed, as npm start runs it)", () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-demo-people-"));
  const dataDir = path.join(tmp, "data");
  const keyDir = path.join(tmp, "keys");
  const cli = (args: string[]) => runCli(args, { RUNLEDGER_KEY_DIR: keyDir, RUNLEDGER_DEMO: undefined }, 240_000);
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it("has one user.create event per demo user and verifies with content intact; a user without one is found", async () => {
    const seeded = await cli(["seed", "--data-dir", dataDir]);
    expect(seeded.code, seeded.stderr).toBe(0);
    const db = new Database(path.join(dataDir, "runledger.sqlite"));
    try {
      const users = db.prepare("SELECT id, email, name, role FROM users").all() as PersonRow[];
      const events = db
        .prepare("SELECT entity_id, payload FROM audit_events WHERE action = 'user.create' AND entity_type = 'user'")
        .all() as CreateEvent[];
      expect(peopleAndEvents(users, events)).toEqual(expectedDemoPeople());
      expect(events).toHaveLength(DEMO_USERS.length);
    } finally {
      db.close();
    }
    checkVerified(await cli(["audit", "verify", "--data-dir", dataDir, "--json"]));

    const tampered = new Database(path.join(dataDir, "runledger.sqlite"));
    let ghostId: number;
    try {
      ghostId = Number(
        tampered
          .prepare("INSERT INTO users (email, name, role, password_hash, created_at) VALUES (?, ?, ?, 'x', ?)")
          .run(GHOST.email, GHOST.name, GHOST.role, new Date().toISOString()).lastInsertRowid,
      );
    } finally {
      tampered.close();
    }
    checkGhostFound(await cli(["audit", "verify", "--data-dir", dataDir, "--json"]), ghostId);
  }, 300_000);
});

describePg("a fresh demo install on PostgreSQL (cli seed with DATABASE_URL, as npm start runs it)", () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-demo-people-pg-"));
  const keyDir = path.join(tmp, "keys");
  const publicKeyFile = path.join(tmp, "audit-ed25519.pub");
  let scratch: ScratchPgDatabase;
  const cli = (args: string[]) =>
    runCli(
      args,
      { DATABASE_URL: scratch.url, RUNLEDGER_DATA_DIR: path.join(tmp, "local"), RUNLEDGER_KEY_DIR: keyDir, RUNLEDGER_DEMO: undefined },
      240_000,
    );
  const query = async <T extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<T[]> => {
    const client = new pg.Client({ connectionString: scratch.url });
    await client.connect();
    try {
      return (await client.query<T>(text, values)).rows;
    } finally {
      await client.end();
    }
  };

  beforeAll(async () => {
    scratch = await createScratchPgDatabase();
  });
  afterAll(async () => {
    await scratch?.drop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("has one user.create event per demo user and verifies with content intact; a user without one is found", async () => {
    const seeded = await cli(["seed"]);
    expect(seeded.code, seeded.stderr).toBe(0);
    const [fingerprint] = keyFingerprintsInDir(keyDir);
    fs.writeFileSync(publicKeyFile, loadKeyFromDir(keyDir, fingerprint!)!.publicKeyPem);
    const users = await query<PersonRow>("SELECT id, email, name, role FROM users");
    const events = await query<CreateEvent>(
      "SELECT entity_id, payload FROM audit_events WHERE action = 'user.create' AND entity_type = 'user'",
    );
    expect(peopleAndEvents(users, events)).toEqual(expectedDemoPeople());
    expect(events).toHaveLength(DEMO_USERS.length);
    const verify = () => cli(["audit", "verify", "--database", scratch.url, "--public-key", publicKeyFile, "--json"]);
    checkVerified(await verify());

    const [ghost] = await query<{ id: number }>(
      "INSERT INTO users (email, name, role, password_hash, created_at) VALUES ($1, $2, $3, 'x', $4) RETURNING id",
      [GHOST.email, GHOST.name, GHOST.role, new Date().toISOString()],
    );
    checkGhostFound(await verify(), ghost!.id);
  }, 300_000);
});
