/**
 * `audit verify --database postgres://…` (issue 16, server/audit/verify-pg.ts) on a real throwaway PostgreSQL holding a
 * real installation (a trained Iris run, a decision note, a registered model, signed checkpoints) moved there by
 * migrate-store. The PostgreSQL store verifies at every level with the same counts as the SQLite source; then real
 * tampering on PostgreSQL is named: a row changed (content), a trigger disabled or its function rewritten
 * (triggers), an event rewritten by a careful forger with the chain recomputed (signed roots), an artifact chunk
 * changed (artifact hash). Each is put back and the store verifies again, so no check here always fails.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describePg, createScratchPgDatabase, withPgClient, type ScratchPgDatabase } from "./pg-test-env";
import { createTestApp, irisConfig, type TestApp } from "./test-app";
import { migrateStoreCommand } from "@/server/cli/migrate-store";
import { auditVerifyCommand } from "@/server/cli/audit-verify";
import { backupCommand, restoreCommand } from "@/server/cli/backup";
import { createAuditCheckpoint } from "@/server/audit/checkpoints";
import { forgeEventOnPg } from "./pg-forged-event";
import { listFileArtifacts } from "@/server/artifacts/async-store";
import type { VerifyPgResult } from "@/server/audit/verify-pg";
import type { VerifyResult } from "@/server/audit/verify";
import { expectedPgTriggers, liveProtectiveTriggers } from "@/server/audit/verify-triggers-pg";
import { migratePg, openPgDatabase } from "@/db/pg-client";

function io() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (t: string) => void out.push(t), err: (t: string) => void err.push(t) }, out, err };
}

describePg("[audit verify] a PostgreSQL store, through a SQLite copy of one snapshot", () => {
  let app: TestApp;
  let store: ScratchPgDatabase;
  let publicKey = "";
  const scratches: ScratchPgDatabase[] = [];

  async function verifyPg(extra: string[] = []): Promise<{ code: number; result: VerifyPgResult; err: string }> {
    const r = io();
    const code = await auditVerifyCommand(["verify", "--database", store.url, "--public-key", publicKey, "--json", ...extra], r.io);
    expect(r.out.length, r.err.join("")).toBe(1);
    return { code, result: JSON.parse(r.out.join("")) as VerifyPgResult, err: r.err.join("") };
  }

  beforeAll(async () => {
    app = createTestApp();
    const engineer = app.as("engineer");
    const { id: runId } = await engineer.runs.create({
      experimentId: app.experimentId,
      config: irisConfig({ epochs: 3 }),
      rationale: "to verify",
    });
    await app.orchestrator.waitFor(runId);
    createAuditCheckpoint(app.db, app.auditKeys, "test: after training");
    await engineer.decisions.addNote({ runId, rationale: "the loss flattens after epoch 2" });
    await engineer.models.register({ runId, modelName: "iris-on-postgres" });
    createAuditCheckpoint(app.db, app.auditKeys, "test: after registering");
    publicKey = path.join(app.dataDir, "audit-ed25519.pub");
    store = await createScratchPgDatabase();
    scratches.push(store);
    const r = io();
    expect(await migrateStoreCommand(["--from", app.dataDir, "--to", store.url], r.io), r.err.join("")).toBe(0);
  }, 120_000);

  afterAll(async () => {
    app?.close();
    for (const s of scratches) await s.drop();
  });

  it("verifies every level, with the same counts as the SQLite source's own verification", async () => {
    const source = io();
    expect(await auditVerifyCommand(["verify", "--data-dir", app.dataDir, "--json"], source.io)).toBe(0);
    const sqliteResult = JSON.parse(source.out.join("")) as VerifyResult;

    const { code, result } = await verifyPg();
    expect(code, result.problems.join("\n")).toBe(0);
    expect(result.ok).toBe(true);
    expect(result.store.copyEqual).toBe(true);
    expect(result.store.snapshot.artifacts?.count).toBe(listFileArtifacts(app.dataDir).length);
    expect(result.levels.chain).toEqual(sqliteResult.levels.chain);
    expect(result.levels.content.ok).toBe(true);
    expect(result.levels.content.checked).toBe(sqliteResult.levels.content.checked);
    expect(result.levels.content.checked).toBeGreaterThan(20);
    expect(result.levels.content.files).toBe(sqliteResult.levels.content.files);
    expect(result.levels.triggers).toEqual({ ok: true, missing: [], altered: [] });
    expect(result.keySource).toBe("given");
    expect(result.notes[0]).toMatch(/^PostgreSQL store postgres:\/\/.*: one snapshot \(\d+ rows, \d+ artifacts\) copied into SQLite/);

    // DATABASE_URL names the store when no --data-dir, --bundle or --database is given; the text form says so.
    const saved = process.env.DATABASE_URL;
    process.env.DATABASE_URL = store.url;
    try {
      const text = io();
      expect(await auditVerifyCommand(["verify", "--public-key", publicKey], text.io), text.err.join("")).toBe(0);
      expect(text.out.join("")).toContain("PostgreSQL store postgres://");
      expect(text.err.join("")).toContain("the copy equals PostgreSQL's snapshot");
    } finally {
      if (saved === undefined) delete process.env.DATABASE_URL;
      else process.env.DATABASE_URL = saved;
    }
  }, 60_000);

  it("refuses without a key held outside the store, and a URL that is not PostgreSQL's", async () => {
    const noKey = io();
    expect(await auditVerifyCommand(["verify", "--database", store.url], noKey.io)).toBe(2);
    expect(noKey.err.join("")).toContain("give --public-key FILE");
    const notPg = io();
    expect(await auditVerifyCommand(["verify", "--database", "mysql://x/y", "--public-key", publicKey], notPg.io)).toBe(2);
    expect(notPg.err.join("")).toContain("--database takes a postgres:// URL");
    const both = io();
    expect(await auditVerifyCommand(["verify", "--database", store.url, "--data-dir", app.dataDir], both.io)).toBe(2);
    expect(both.err.join("")).toContain("give one of --data-dir, --bundle or --database");
  });

  it("names a row changed on PostgreSQL (content level), and passes once it is put back", async () => {
    const [run] = await withPgClient(
      store.url,
      async (c) =>
        (await c.query<{ id: string; final_weights_sha256: string }>("SELECT id, final_weights_sha256 FROM runs ORDER BY id LIMIT 1")).rows,
    );
    await withPgClient(store.url, (c) => c.query("UPDATE runs SET final_weights_sha256 = $1 WHERE id = $2", ["0".repeat(64), run!.id]));
    try {
      const { code, result } = await verifyPg();
      expect(code).toBe(1);
      expect(result.levels.chain.ok).toBe(true);
      expect(result.levels.content.ok).toBe(false);
      expect(result.levels.content.problems.map((p) => p.message).join("\n")).toMatch(
        new RegExp(`run ${run!.id}\\b.*(final ?[wW]eights|finalWeightsSha256)`),
      );
    } finally {
      await withPgClient(store.url, (c) =>
        c.query("UPDATE runs SET final_weights_sha256 = $1 WHERE id = $2", [run!.final_weights_sha256, run!.id]),
      );
    }
    expect((await verifyPg()).code).toBe(0);
  }, 60_000);

  it("names a disabled trigger and a rewritten trigger function (checked on PostgreSQL, not on the copy)", async () => {
    await withPgClient(store.url, (c) => c.query("ALTER TABLE decisions DISABLE TRIGGER decisions_no_update"));
    let r = await verifyPg();
    expect(r.code).toBe(1);
    expect(r.result.levels.triggers).toEqual({ ok: false, missing: [], altered: ["decisions_no_update"] });
    expect(r.result.problems.join("\n")).toContain("protective trigger decisions_no_update is disabled");
    await withPgClient(store.url, (c) => c.query("ALTER TABLE decisions ENABLE TRIGGER decisions_no_update"));

    const original = expectedPgTriggers().functions.runledger_reject_change!;
    await withPgClient(store.url, (c) =>
      c.query("CREATE OR REPLACE FUNCTION runledger_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END; $$"),
    );
    r = await verifyPg();
    expect(r.code).toBe(1);
    expect(r.result.levels.triggers?.altered).toEqual(["function runledger_reject_change"]);
    expect(r.result.problems.join("\n")).toContain("the triggers' function runledger_reject_change differs from its migration");
    await withPgClient(store.url, (c) =>
      c.query(`CREATE OR REPLACE FUNCTION runledger_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$ ${original} $$`),
    );
    expect((await verifyPg()).code).toBe(0);
  }, 90_000);

  it("names an event rewritten by a careful forger (chain recomputed, trigger disabled and enabled again)", async () => {
    const forged = await forgeEventOnPg(store.url, 5, { leaveTriggerDisabled: false });
    try {
      const { code, result } = await verifyPg();
      expect(code).toBe(1);
      expect(result.levels.chain.ok).toBe(false);
      expect(result.levels.chain.problem).toMatch(/checkpoint #\d+ \(tree size \d+\) root does not match the events/);
      expect(result.levels.triggers?.ok).toBe(true);
    } finally {
      await forged.restore();
    }
    expect((await verifyPg()).code).toBe(0);
  }, 90_000);

  it("names an artifact changed in PostgreSQL's artifact store", async () => {
    const victim = listFileArtifacts(app.dataDir)[0]!.sha256;
    const flip = "UPDATE artifact_chunks SET data = set_byte(data, 0, 255 - get_byte(data, 0)) WHERE sha256 = $1 AND idx = 0";
    await withPgClient(store.url, (c) => c.query(flip, [victim]));
    try {
      const { code, result } = await verifyPg();
      expect(code).toBe(1);
      expect(result.store.copyDifferences).toEqual([
        expect.stringMatching(new RegExp(`^artifact ${victim} is corrupted: its content hashes to`)),
      ]);
      expect(result.problems.join("\n")).toContain(`the verified copy differs from PostgreSQL's snapshot: artifact ${victim} is corrupted`);
    } finally {
      await withPgClient(store.url, (c) => c.query(flip, [victim]));
    }
    expect((await verifyPg()).code).toBe(0);
  }, 60_000);

  it("backup --database: one snapshot in the data directory's archive format; restored, it verifies and moves back into PostgreSQL", async () => {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "rl-backup-pg-"));
    try {
      const out = path.join(work, "store.tar");
      const b = io();
      expect(await backupCommand(["--database", store.url, "--public-key", publicKey, "--out", out, "--json"], b.io), b.err.join("")).toBe(
        0,
      );
      const summary = JSON.parse(b.out.join("")) as { files: number; problems: string[]; ledger: { events: number } };
      expect(summary.problems).toEqual([]);
      expect(summary.files).toBe(listFileArtifacts(app.dataDir).length + 2); // database, artifacts, public key
      const restored = path.join(work, "restored");
      const r = io();
      expect(await restoreCommand(["--from", out, "--data-dir", restored], r.io), r.err.join("")).toBe(0);
      const v = io();
      expect(await auditVerifyCommand(["verify", "--data-dir", restored, "--json"], v.io), v.out.join("")).toBe(0);
      const verified = JSON.parse(v.out.join("")) as VerifyResult;
      expect(verified.eventsChecked).toBe(summary.ledger.events);
      expect(verified.levels.content.ok).toBe(true);
      const back = await createScratchPgDatabase();
      scratches.push(back);
      const m = io();
      expect(await migrateStoreCommand(["--from", restored, "--to", back.url], m.io), m.err.join("")).toBe(0);

      // A store whose artifact was changed is not archived: the copy check names it and nothing is written.
      const victim = listFileArtifacts(app.dataDir)[0]!.sha256;
      const flip = "UPDATE artifact_chunks SET data = set_byte(data, 0, 255 - get_byte(data, 0)) WHERE sha256 = $1 AND idx = 0";
      await withPgClient(store.url, (c) => c.query(flip, [victim]));
      try {
        const bad = io();
        const second = path.join(work, "second.tar");
        expect(await backupCommand(["--database", store.url, "--public-key", publicKey, "--out", second], bad.io)).toBe(1);
        expect(bad.err.join("")).toContain(`nothing was archived: artifact ${victim} is corrupted`);
        expect(fs.existsSync(second)).toBe(false);
      } finally {
        await withPgClient(store.url, (c) => c.query(flip, [victim]));
      }
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  }, 120_000);

  it("db/migrations-pg/protective-triggers.json is what the committed migrations create (update it with a migration)", async () => {
    const scratch = await createScratchPgDatabase();
    scratches.push(scratch);
    const db = openPgDatabase(scratch.url, { max: 4 });
    try {
      await migratePg(db);
      const client = await db.$client.connect();
      try {
        const live = await liveProtectiveTriggers(client);
        const now = {
          triggers: Object.fromEntries([...live.triggers].sort(([a], [b]) => (a < b ? -1 : 1)).map(([name, t]) => [name, t.def])),
          functions: Object.fromEntries([...live.functions].sort(([a], [b]) => (a < b ? -1 : 1))),
        };
        const file = path.join(process.cwd(), "db", "migrations-pg", "protective-triggers.json");
        expect(now, `the migrations' triggers changed: write this to ${file}:\n${JSON.stringify(now, null, 2)}`).toEqual(
          JSON.parse(fs.readFileSync(file, "utf8")),
        );
        expect(Object.keys(now.triggers).length).toBeGreaterThanOrEqual(21);
      } finally {
        client.release();
      }
    } finally {
      await db.$client.end();
    }
  });
});
