/**
 * A REAL witness process on loopback (`witness serve`, spawned) and a real app: cosigning a fresh log and its
 * growth, refusing a rollback, catching the rewrite-and-re-sign attack with `audit verify --witness-key`, refusing
 * to cosign the forged history when the forged app pushes it, and the app working on while the witness is down.
 */
import Database from "better-sqlite3";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createTestApp, type TestApp } from "@/server/tests/test-app";
import { createAppServices } from "@/server/app-context/app-services";
import { createAuditCheckpoint } from "@/server/audit/checkpoints";
import { appendAuditEvent, SYSTEM_ACTOR } from "@/server/audit/ledger";
import { PUBLIC_KEY_FILE } from "@/server/audit/keys";
import { auditVerifyCommand } from "@/server/cli/audit-verify";
import { logOrigin, logVerifierKey } from "../checkpoint-note";
import { fetchWitnessCheckpoint, parseWitnessConfig } from "../client";
import { WitnessPusher, type PushResult } from "../pusher";
import { witnessStatus } from "@/db/schema";
import { witnessAnchors } from "../witness-anchors";
import { parseSignedNote, parseVerifierKey } from "../note";
import { verifyCosignature } from "../cosignature";
import { startWitnessProcess, type WitnessProcess } from "../witness-process";
import { rewriteAndResign } from "./forge";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function logVkey(app: { auditKeys: TestApp["auditKeys"] }): string {
  return logVerifierKey(logOrigin(app.auditKeys.fingerprint), app.auditKeys.publicKey).vkey;
}

/** `n` recorded verifications (events no table mirrors, so only the chain and anchors speak for them). */
function addEvents(app: { db: TestApp["db"] }, n: number, ok = true): number[] {
  const seqs: number[] = [];
  for (let i = 0; i < n; i++) {
    seqs.push(
      app.db.transaction((tx) =>
        appendAuditEvent(tx, {
          actor: SYSTEM_ACTOR,
          action: "audit.verify",
          entityType: "auditLedger",
          entityId: "live",
          payload: { ok, problem: ok ? null : "seq 3: leaf hash mismatch", i },
        }),
      ).seq,
    );
  }
  return seqs;
}

async function witnessFor(app: TestApp, keyDir?: string, port?: number): Promise<WitnessProcess> {
  const w = await startWitnessProcess({ logKey: logVkey(app), keyDir, port, name: "witness.test/auditor" });
  if (!keyDir) cleanups.push(() => fs.rmSync(w.keyDir, { recursive: true, force: true }));
  cleanups.push(() => w.stop());
  return w;
}

function newApp(): TestApp {
  const app = createTestApp();
  cleanups.push(() => app.close());
  return app;
}

/** A consistent copy of a live data directory (database + public key), as a backup would be. */
function snapshot(app: TestApp): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-snapshot-"));
  app.db.$client.exec(`VACUUM INTO '${path.join(dir, "runledger.sqlite").replace(/'/g, "''")}'`);
  fs.copyFileSync(path.join(app.dataDir, PUBLIC_KEY_FILE), path.join(dir, PUBLIC_KEY_FILE));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function verifyCli(args: string[]): Promise<{
  code: number;
  json: { ok: boolean; problem: string | null; problems: string[]; levels?: { anchor?: { anchored: boolean; treeSize: number } } };
}> {
  let out = "";
  let err = "";
  const code = await auditVerifyCommand(["verify", ...args, "--json"], { out: (t) => (out += t), err: (t) => (err += t) });
  if (!out) throw new Error(`audit verify printed nothing (exit ${code}): ${err}`);
  return { code, json: JSON.parse(out) };
}

describe("witness process on loopback", () => {
  it("cosigns a fresh log and its growth; the cosignatures become verified anchors; rollback is refused", async () => {
    const app = newApp();
    const w = await witnessFor(app);
    const pusher = new WitnessPusher(app, parseWitnessConfig(`${w.url}=${w.vkey}`), { log: () => undefined });

    addEvents(app, 5);
    const cp1 = createAuditCheckpoint(app.db, app.auditKeys, "test 1").checkpoint;
    expect(await pusher.pushNow()).toEqual([expect.objectContaining({ outcome: "cosigned", treeSize: cp1.treeSize })]);
    const backup = snapshot(app); // taken after the first cosignature

    addEvents(app, 30);
    const cp2 = createAuditCheckpoint(app.db, app.auditKeys, "test 2").checkpoint;
    expect(await pusher.pushNow()).toEqual([expect.objectContaining({ outcome: "cosigned", treeSize: cp2.treeSize })]); // consistency proof from cp1
    expect(await pusher.pushNow()).toEqual([expect.objectContaining({ outcome: "already cosigned" })]);

    const a = witnessAnchors(app.db.$client, [w.vkey]);
    expect(a.problems).toEqual([]);
    expect(a.anchors.map((x) => [x.treeSize, x.rootHash])).toEqual([
      [cp1.treeSize, cp1.rootHash],
      [cp2.treeSize, cp2.rootHash],
    ]);
    expect(a.latestCosigned).toMatchObject({ witness: "witness.test/auditor", treeSize: cp2.treeSize });

    // An auditor asks the witness directly.
    const origin = logOrigin(app.auditKeys.fingerprint);
    const res = await fetch(`${w.url}/checkpoint/${encodeURIComponent(origin)}`);
    const note = parseSignedNote(await res.text());
    expect(note.text).toBe(`${origin}\n${cp2.treeSize}\n${Buffer.from(cp2.rootHash, "hex").toString("base64")}\n`);
    expect(
      verifyCosignature(
        parseVerifierKey(w.vkey),
        note.text,
        note.signatures.find((s) => s.name === "witness.test/auditor")!,
      ),
    ).not.toBeNull();
    expect(await fetchWitnessCheckpoint(w.url, parseVerifierKey(w.vkey), origin)).toMatchObject({
      treeSize: cp2.treeSize,
      rootHash: cp2.rootHash,
      witness: "witness.test/auditor",
    });
    await expect(fetchWitnessCheckpoint(w.url, parseVerifierKey(logVkey(app)), origin)).rejects.toThrow(); // a log key is no witness key

    // Over HTTP: bounded body, malformed request, unknown origin.
    const post = (body: string) => fetch(`${w.url}/add-checkpoint`, { method: "POST", body });
    expect((await post("x".repeat(70 * 1024))).status).toBe(413);
    expect((await post("old 1\n\nnot a checkpoint\n")).status).toBe(400);
    expect(
      (
        await post(
          `old 0\n\nelsewhere.example/log\n1\n${Buffer.alloc(32).toString("base64")}\n\n— elsewhere.example/log ${Buffer.alloc(68).toString("base64")}\n`,
        )
      ).status,
    ).toBe(404);

    // Rollback: the operator restores the backup and carries on; the witness refuses the smaller tree.
    const restored = createAppServices(backup, { keyDir: app.keyDir });
    cleanups.push(() => restored.db.$client.close());
    addEvents(restored, 3);
    const cpOld = createAuditCheckpoint(restored.db, restored.auditKeys, "after restore").checkpoint;
    expect(cpOld.treeSize).toBeLessThan(cp2.treeSize);
    const [rolled] = await new WitnessPusher(restored, parseWitnessConfig(`${w.url}=${w.vkey}`), { log: () => undefined }).pushNow();
    expect(rolled).toMatchObject({ outcome: "failed", reachable: true });
    expect(rolled!.outcome === "failed" && rolled!.error).toMatch(
      new RegExp(`already cosigned tree size ${cp2.treeSize}, larger than this log's latest checkpoint \\(${cpOld.treeSize}\\)`),
    );
    expect(parseSignedNote(await (await fetch(`${w.url}/checkpoint/${encodeURIComponent(origin)}`)).text()).text).toBe(note.text); // unchanged
  });

  it("two servers on one store: a push overtaken by the other server's newer checkpoint is superseded, not a rollback", async () => {
    const app = newApp();
    const other = createAppServices(app.dataDir, { keyDir: app.keyDir }); // a second server on the same data directory
    cleanups.push(() => other.db.$client.close());
    const w = await witnessFor(app);
    const config = parseWitnessConfig(`${w.url}=${w.vkey}`);
    addEvents(app, 3);
    const cp1 = createAuditCheckpoint(app.db, app.auditKeys, "interval").checkpoint;
    addEvents(other, 3);
    const cp2 = createAuditCheckpoint(other.db, other.auditKeys, "interval").checkpoint;
    expect((await new WitnessPusher(other, config, { log: () => undefined }).pushNow())[0]).toMatchObject({
      outcome: "cosigned",
      treeSize: cp2.treeSize,
    });
    // The first server read its latest checkpoint (cp1) just before cp2 reached the witness, and pushes it now.
    const first = new WitnessPusher(app, config, { log: () => undefined }) as unknown as {
      pushTo: (w: (typeof config.witnesses)[number], cp: typeof cp1) => Promise<PushResult>;
    };
    expect(await first.pushTo(config.witnesses[0]!, cp1)).toEqual({
      url: w.url,
      outcome: "superseded",
      treeSize: cp1.treeSize,
      latestTreeSize: cp2.treeSize,
    });
    expect(app.db.select().from(witnessStatus).all()).toMatchObject([{ lastError: null, failingSince: null, cosignedSize: cp2.treeSize }]);
  });

  it("catches the rewrite-and-re-sign attack with --witness-key, and the witness refuses the forged history", async () => {
    const app = newApp();
    const w = await witnessFor(app);
    const pusher = new WitnessPusher(app, parseWitnessConfig(`${w.url}=${w.vkey}`), { log: () => undefined });
    const [failedCheck] = addEvents(app, 1, false); // the verification the attacker wants to erase
    addEvents(app, 10);
    createAuditCheckpoint(app.db, app.auditKeys, "interval");
    expect((await pusher.pushNow())[0]!.outcome).toBe("cosigned");
    addEvents(app, 10);
    const cp2 = createAuditCheckpoint(app.db, app.auditKeys, "interval").checkpoint;
    expect((await pusher.pushNow())[0]!.outcome).toBe("cosigned");
    const keyFile = path.join(app.dataDir, "..", `${path.basename(app.dataDir)}-witness.vkey`);
    fs.writeFileSync(keyFile, `${w.vkey}\n`);
    cleanups.push(() => fs.rmSync(keyFile, { force: true }));
    const pubFile = path.join(app.dataDir, PUBLIC_KEY_FILE);
    const honest = await verifyCli(["--data-dir", app.dataDir, "--public-key", pubFile, "--witness-key", keyFile]);
    expect(honest.json.problems).toEqual([]);
    expect(honest.code).toBe(0);

    const forgedDir = snapshot(app);
    rewriteAndResign(forgedDir, app.auditKeys, { seq: failedCheck!, payload: (p) => ({ ...p, ok: true, problem: null }) });

    // Without an anchor the forgery is internally consistent, signed by the genuine key: nothing can tell.
    const fooled = await verifyCli(["--data-dir", forgedDir, "--public-key", pubFile]);
    expect(fooled.json.problems).toEqual([]);
    // The witness's cosignatures (stored with the log) contradict the re-signed roots: split view.
    const caught = await verifyCli(["--data-dir", forgedDir, "--public-key", pubFile, "--witness-key", keyFile]);
    expect(caught.code).toBe(1);
    expect(caught.json.problems.join("\n")).toMatch(
      new RegExp(`witness witness\\.test/auditor \\(tree size ${cp2.treeSize}\\) root does not match`),
    );

    // The forged app pushes its next checkpoint: the witness will not cosign the forged history.
    const forgedApp = createAppServices(forgedDir, { keyDir: app.keyDir });
    cleanups.push(() => forgedApp.db.$client.close());
    addEvents(forgedApp, 2);
    const cp3 = createAuditCheckpoint(forgedApp.db, forgedApp.auditKeys, "after the rewrite").checkpoint;
    expect(cp3.treeSize).toBeGreaterThan(cp2.treeSize);
    const [refused] = await new WitnessPusher(forgedApp, parseWitnessConfig(`${w.url}=${w.vkey}`), { log: () => undefined }).pushNow();
    expect(refused).toMatchObject({ outcome: "failed", reachable: true });
    expect(refused!.outcome === "failed" && refused!.error).toMatch(/inconsistent with the one it cosigned before \(422/);
    const evidence = fs.readFileSync(path.join(w.keyDir, "evidence.jsonl"), "utf8");
    expect(evidence).toContain('"kind":"inconsistent"');
  });

  it("deleting the stored cosignatures as well leaves the log uncovered: witness lag", async () => {
    const app = newApp();
    const w = await witnessFor(app);
    const pusher = new WitnessPusher(app, parseWitnessConfig(`${w.url}=${w.vkey}`), { log: () => undefined });
    const hourAgo = new Date(Date.now() - 3_600_000).toISOString();
    const target = app.db.transaction((tx) =>
      appendAuditEvent(tx, {
        actor: SYSTEM_ACTOR,
        action: "audit.verify",
        entityType: "auditLedger",
        entityId: "live",
        payload: { ok: false },
        at: hourAgo,
      }),
    ).seq;
    createAuditCheckpoint(app.db, app.auditKeys, "an hour ago", { at: hourAgo });
    expect((await pusher.pushNow())[0]!.outcome).toBe("cosigned");
    addEvents(app, 3);
    createAuditCheckpoint(app.db, app.auditKeys, "now");
    expect((await pusher.pushNow())[0]!.outcome).toBe("cosigned");
    const keyFile = path.join(os.tmpdir(), `witness-${path.basename(app.dataDir)}.vkey`);
    fs.writeFileSync(keyFile, `${w.vkey}\n`);
    cleanups.push(() => fs.rmSync(keyFile, { force: true }));

    const forgedDir = snapshot(app);
    rewriteAndResign(forgedDir, app.auditKeys, { seq: target, payload: (p) => ({ ...p, ok: true }) });
    const raw = new Database(path.join(forgedDir, "runledger.sqlite"));
    const trigger = (raw.prepare("SELECT sql FROM sqlite_master WHERE name = 'witness_cosignatures_no_delete'").get() as { sql: string })
      .sql;
    raw.exec("DROP TRIGGER witness_cosignatures_no_delete; DELETE FROM witness_cosignatures;");
    raw.exec(trigger);
    raw.close();
    const r = await verifyCli(["--data-dir", forgedDir, "--public-key", path.join(app.dataDir, PUBLIC_KEY_FILE), "--witness-key", keyFile]);
    expect(r.code).toBe(1);
    expect(r.json.problems.join("\n")).toMatch(/witness lag: \d+ events from seq 1 on are not covered by any witness cosignatures/);
  });

  it("the app keeps working while its witness is down, says so, and catches up when it is back", async () => {
    const app = newApp();
    const first = await witnessFor(app);
    await first.stop();
    const previous = process.env.RUNLEDGER_WITNESSES;
    process.env.RUNLEDGER_WITNESSES = `${first.url}=${first.vkey}`; // what the Audit page lists
    cleanups.push(() => (previous === undefined ? delete process.env.RUNLEDGER_WITNESSES : (process.env.RUNLEDGER_WITNESSES = previous)));
    const pusher = new WitnessPusher(app, parseWitnessConfig(process.env.RUNLEDGER_WITNESSES), { log: () => undefined, timeoutMs: 3000 });
    cleanups.push(pusher.start(60_000));

    // A change through the API: it commits, a checkpoint is signed, the push fails in the background.
    const project = await app.as("engineer").projects.create({ name: "witness down", description: "still works" });
    expect(project.id).toBeGreaterThan(0);
    const [down] = await pusher.pushNow();
    expect(down).toMatchObject({ outcome: "failed", reachable: false });
    const overview = await app.as("auditor").witnesses.overview();
    expect(overview.witnesses).toEqual([
      expect.objectContaining({
        url: first.url,
        name: "witness.test/auditor",
        reachable: false,
        failingSince: expect.any(String),
        lastError: expect.stringMatching(/unreachable/),
      }),
    ]);

    // Back on the same port and key directory: the next push catches up.
    await witnessFor(app, first.keyDir, first.port);
    const [back] = await pusher.pushNow();
    expect(back).toMatchObject({ outcome: "cosigned" });
    const after = await app.as("auditor").witnesses.overview();
    expect(after.witnesses[0]).toMatchObject({ reachable: true, failingSince: null });
    expect(after.cosignatures[0]).toMatchObject({ witnessName: "witness.test/auditor", verified: true });
  });
});
