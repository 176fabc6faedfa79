/**
 * `audit verify --witness-url URL`: the verifier asks a REAL witness process on loopback for the latest checkpoint
 * it cosigned and uses it as an anchor besides the stored cosignatures. A tail truncated together with its
 * checkpoints and stored cosignatures passes with --witness-key alone and fails with --witness-url (truncation);
 * a history rewritten after the last stored cosignature fails as a split view; a witness answering under another
 * key is a problem; an unreachable witness anchors nothing (a note, exit 1 only with --require-anchor).
 */
import Database from "better-sqlite3";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestApp, type TestApp } from "@/server/tests/test-app";
import { createAuditCheckpoint, type AuditCheckpointRow } from "@/server/audit/checkpoints";
import { appendAuditEvent, SYSTEM_ACTOR } from "@/server/audit/ledger";
import { PUBLIC_KEY_FILE } from "@/server/audit/keys";
import { auditVerifyCommand } from "@/server/cli/audit-verify";
import { logOrigin, logVerifierKey } from "../checkpoint-note";
import { parseWitnessConfig } from "../client";
import { WitnessPusher } from "../pusher";
import { loadOrCreateWitnessIdentity } from "../witness-files";
import { startWitnessProcess, type WitnessProcess } from "../witness-process";
import { rewriteAndResign } from "./forge";

let app: TestApp;
let w: WitnessProcess;
let cp1: AuditCheckpointRow;
let cp2: AuditCheckpointRow;
let work: string;
let keyFile: string;
let pubFile: string;

function addEvents(n: number): void {
  for (let i = 0; i < n; i++) {
    app.db.transaction((tx) =>
      appendAuditEvent(tx, {
        actor: SYSTEM_ACTOR,
        action: "audit.verify",
        entityType: "auditLedger",
        entityId: "live",
        payload: { ok: true, problem: null, i },
      }),
    );
  }
}

beforeAll(async () => {
  app = createTestApp();
  work = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-witness-url-"));
  w = await startWitnessProcess({
    logKey: logVerifierKey(logOrigin(app.auditKeys.fingerprint), app.auditKeys.publicKey).vkey,
    name: "witness.test/auditor",
  });
  const pusher = new WitnessPusher(app, parseWitnessConfig(`${w.url}=${w.vkey}`), { log: () => undefined });
  addEvents(5);
  cp1 = createAuditCheckpoint(app.db, app.auditKeys, "first").checkpoint;
  expect((await pusher.pushNow())[0]).toMatchObject({ outcome: "cosigned", treeSize: cp1.treeSize });
  addEvents(10);
  cp2 = createAuditCheckpoint(app.db, app.auditKeys, "second").checkpoint;
  expect((await pusher.pushNow())[0]).toMatchObject({ outcome: "cosigned", treeSize: cp2.treeSize });
  keyFile = path.join(work, "witness.vkey");
  fs.writeFileSync(keyFile, `${w.vkey}\n`);
  pubFile = path.join(app.dataDir, PUBLIC_KEY_FILE);
}, 120_000);

afterAll(async () => {
  await w?.stop();
  app?.close();
  if (w) fs.rmSync(w.keyDir, { recursive: true, force: true });
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

/** A consistent copy of the data directory (database + public key), changed by `attack` with every trigger dropped and put back. */
function attackedCopy(attack: (db: Database.Database, dir: string) => void): string {
  const dir = fs.mkdtempSync(path.join(work, "copy-"));
  app.db.$client.exec(`VACUUM INTO '${path.join(dir, "runledger.sqlite").replace(/'/g, "''")}'`);
  fs.copyFileSync(pubFile, path.join(dir, PUBLIC_KEY_FILE));
  const db = new Database(path.join(dir, "runledger.sqlite"));
  const triggers = db.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").all() as { name: string; sql: string }[];
  for (const t of triggers) db.exec(`DROP TRIGGER ${t.name}`);
  attack(db, dir);
  for (const t of triggers) db.exec(t.sql);
  db.close();
  return dir;
}

type Json = {
  ok: boolean;
  problems: string[];
  notes: string[];
  levels: { anchor: { anchored: boolean; treeSize: number; by: { name: string; treeSize: number }[] } };
  witnessUrls?: { url: string; outcome: string; treeSize: number | null }[];
};

async function verifyCli(args: string[], json = true): Promise<{ code: number; json: Json; text: string; err: string }> {
  let out = "";
  let err = "";
  const code = await auditVerifyCommand(["verify", "--public-key", pubFile, ...args, ...(json ? ["--json"] : [])], {
    out: (t) => (out += t),
    err: (t) => (err += t),
  });
  return { code, json: json && out ? (JSON.parse(out) as Json) : ({} as Json), text: out, err };
}

const asked = () => `witness witness.test/auditor (asked at ${w.url})`;
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

describe("audit verify --witness-url (real witness on loopback)", () => {
  it("an honest live log: anchored up to the witness's latest checkpoint, asked directly", async () => {
    const r = await verifyCli(["--data-dir", app.dataDir, "--witness-key", keyFile, "--witness-url", w.url, "--require-anchor"]);
    expect(r.json.problems).toEqual([]);
    expect(r.code).toBe(0);
    expect(r.json.levels.anchor).toMatchObject({ anchored: true, treeSize: cp2.treeSize });
    expect(r.json.levels.anchor.by).toContainEqual(expect.objectContaining({ name: asked(), treeSize: cp2.treeSize }));
    expect(r.json.witnessUrls).toEqual([expect.objectContaining({ url: w.url, outcome: "cosigned", treeSize: cp2.treeSize })]);
    const text = await verifyCli(["--data-dir", app.dataDir, "--witness-key", keyFile, "--witness-url", w.url], false);
    expect(text.text).toContain(`witness at ${w.url}: cosigned tree size ${cp2.treeSize} (witness.test/auditor,`);
  });

  it("a tail truncated with its checkpoints and stored cosignatures: passes with --witness-key alone, fails with --witness-url", async () => {
    const cut = cp1.treeSize + 1; // keep the first checkpoint's own event
    const dir = attackedCopy((db) => {
      db.prepare("DELETE FROM audit_events WHERE seq > ?").run(cut);
      db.prepare("DELETE FROM audit_checkpoints WHERE tree_size > ?").run(cut);
      db.prepare("DELETE FROM witness_cosignatures WHERE tree_size > ?").run(cut);
      db.exec("DELETE FROM audit_tree_nodes");
    });
    const alone = await verifyCli(["--data-dir", dir, "--witness-key", keyFile]);
    expect(alone.json.problems).toEqual([]);
    expect(alone.code).toBe(0);
    expect(alone.json.levels.anchor).toMatchObject({ anchored: true, treeSize: cp1.treeSize }); // the stored cosignature left behind

    const asking = await verifyCli(["--data-dir", dir, "--witness-key", keyFile, "--witness-url", w.url]);
    expect(asking.code).toBe(1);
    expect(asking.json.ok).toBe(false);
    expect(asking.json.levels.anchor.anchored).toBe(false);
    expect(asking.json.problems.join("\n")).toMatch(
      new RegExp(`log has ${cut} events but ${escape(asked())} covers ${cp2.treeSize} \\(truncated\\?\\)`),
    );
  });

  it("a history rewritten after the last stored cosignature, later cosignatures deleted: split view against the witness", async () => {
    const dir = attackedCopy((db) => db.prepare("DELETE FROM witness_cosignatures WHERE tree_size > ?").run(cp1.treeSize));
    rewriteAndResign(dir, app.auditKeys, { seq: cp1.treeSize + 3, payload: (p) => ({ ...p, ok: false, problem: "rewritten" }) });
    const alone = await verifyCli(["--data-dir", dir, "--witness-key", keyFile]);
    expect(alone.json.problems).toEqual([]);
    expect(alone.code).toBe(0);

    const asking = await verifyCli(["--data-dir", dir, "--witness-key", keyFile, "--witness-url", w.url]);
    expect(asking.code).toBe(1);
    expect(asking.json.problems.join("\n")).toMatch(
      new RegExp(
        `${escape(asked())} \\(tree size ${cp2.treeSize}\\) root does not match the events .*\\(split view or rewritten history\\?\\)`,
      ),
    );
  });

  it("a witness whose answer does not verify under the given key is a problem, even without --require-anchor", async () => {
    const other = loadOrCreateWitnessIdentity(path.join(work, "other-witness"), "witness.test/auditor").identity; // same name, another key
    const otherFile = path.join(work, "other.vkey");
    fs.writeFileSync(otherFile, `${other.verifierKey.vkey}\n`);
    const r = await verifyCli(["--data-dir", app.dataDir, "--witness-key", otherFile, "--witness-url", w.url]);
    expect(r.code).toBe(1);
    expect(r.json.problems.join("\n")).toMatch(
      /no valid cosignature by witness\.test\/auditor\+[0-9a-f]{8} \(wrong witness key, or not that witness\?\)/,
    );
    expect(r.json.witnessUrls).toEqual([expect.objectContaining({ outcome: "invalid" })]);
  });

  it("an unreachable witness anchors nothing: said plainly, exit 1 only with --require-anchor", async () => {
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, "127.0.0.1", () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const down = `http://127.0.0.1:${port}`;
    const lenient = await verifyCli(["--data-dir", app.dataDir, "--witness-key", keyFile, "--witness-url", down]);
    expect(lenient.code).toBe(0);
    expect(lenient.json.witnessUrls).toEqual([expect.objectContaining({ url: down, outcome: "unreachable" })]);
    expect(lenient.json.notes.join("\n")).toMatch(
      new RegExp(`the witness at ${escape(down)} was not asked successfully \\(witness ${escape(down)} unreachable: ECONNREFUSED\\)`),
    );
    const text = await verifyCli(["--data-dir", app.dataDir, "--witness-key", keyFile, "--witness-url", down], false);
    expect(text.text).toContain(`witness at ${down}: NOT anchored by it (unreachable)`);

    const strict = await verifyCli(["--data-dir", app.dataDir, "--witness-key", keyFile, "--witness-url", down, "--require-anchor"]);
    expect(strict.code).toBe(1);
    expect(strict.json.problems.join("\n")).toMatch(
      /not asked successfully .*an anchor by every --witness-url is required \(--require-anchor\)/,
    );
  });

  it("usage: --witness-url needs --witness-key and a data directory", async () => {
    const noKey = await verifyCli(["--data-dir", app.dataDir, "--witness-url", w.url]);
    expect(noKey.code).toBe(2);
    expect(noKey.err).toMatch(/--witness-url needs --witness-key FILE/);
    const bundle = await verifyCli(["--bundle", work, "--witness-key", keyFile, "--witness-url", w.url]);
    expect(bundle.code).toBe(2);
    expect(bundle.err).toMatch(/--witness-url checks a live data directory/);
    const bad = await verifyCli(["--data-dir", app.dataDir, "--witness-key", keyFile, "--witness-url", "ftp://x"]);
    expect(bad.code).toBe(2);
  });
});
