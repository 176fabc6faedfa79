/**
 * witnessAnchors and the lag policy on a real database: valid cosignatures by trusted witness keys become anchors;
 * an edited row is a problem; unknown witnesses and other origins are ignored; events more than 20 minutes older
 * than the newest event must be covered by a cosignature ("witness lag").
 */
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { openDatabase, type Db } from "@/db/client";
import { appendAuditEvent, SYSTEM_ACTOR } from "@/server/audit/ledger";
import { createAuditCheckpoint } from "@/server/audit/checkpoints";
import { generateAuditKeys } from "@/server/audit/keys";
import { defaultLogOrigin, formatCheckpointBody } from "../checkpoint-note";
import { cosignNote } from "../cosignature";
import { SIG_TYPE_COSIGNATURE_V1, parseSignatureLine, verifierKeyFrom } from "../note";
import { insertCosignature } from "../store";
import { WITNESS_MAX_LAG_MINUTES, witnessAnchors, witnessLagProblem, witnessLagProblemFor } from "../witness-anchors";
import { BUNDLE_COSIGNATURES_FILE, tailFactsOf, witnessAnchorsForBundle, writeWitnessBundleFiles } from "../bundle-files";
import { listAuditCheckpoints, iterateAuditEvents } from "@/server/audit/ledger-reads";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function setup() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "witness-anchors-"));
  dirs.push(dir);
  const db = openDatabase(dir);
  const keys = generateAuditKeys();
  const t0 = Date.UTC(2026, 0, 1, 12, 0, 0);
  const event = (minutes: number) =>
    db.transaction((tx) =>
      appendAuditEvent(tx, {
        actor: SYSTEM_ACTOR,
        action: "audit.verify",
        entityType: "auditLedger",
        entityId: "live",
        payload: { ok: true },
        at: new Date(t0 + minutes * 60_000).toISOString(),
      }),
    );
  const witness = crypto.generateKeyPairSync("ed25519");
  const wkey = verifierKeyFrom("witness.test/w1", SIG_TYPE_COSIGNATURE_V1, witness.publicKey);
  const cosign = (
    db: Db,
    cp: { id: number; treeSize: number; rootHash: string },
    origin = defaultLogOrigin(keys.fingerprint),
    signer = witness.privateKey,
    name = "witness.test/w1",
  ) => {
    const line = cosignNote(name, signer, formatCheckpointBody({ origin, treeSize: cp.treeSize, rootHash: cp.rootHash }), 1_767_268_800);
    const sig = parseSignatureLine(line);
    insertCosignature(db, {
      checkpointId: cp.id,
      origin,
      treeSize: cp.treeSize,
      rootHash: cp.rootHash,
      witnessName: name,
      keyId: sig.keyId.toString("hex"),
      timestamp: 1_767_268_800,
      signature: Buffer.concat([sig.keyId, sig.signature]).toString("base64"),
      receivedAt: new Date().toISOString(),
    });
  };
  return { dir, db, keys, event, wkey, cosign, witness };
}

describe("witnessAnchors", () => {
  it("turns valid cosignatures into anchors, flags an altered row, ignores unknown witnesses and other logs", () => {
    const { dir, db, keys, event, wkey, cosign } = setup();
    for (let i = 0; i < 5; i++) event(i);
    const cp = createAuditCheckpoint(db, keys, "t", { at: new Date(Date.UTC(2026, 0, 1, 12, 5)).toISOString() }).checkpoint;
    cosign(db, cp);
    cosign(db, { ...cp, treeSize: cp.treeSize + 1 }, "someone.else/log"); // another log's checkpoint: says nothing about this one
    const stranger = crypto.generateKeyPairSync("ed25519");
    cosign(db, { ...cp, treeSize: cp.treeSize }, undefined, stranger.privateKey, "witness.test/stranger");
    let r = witnessAnchors(db.$client, [wkey.vkey]);
    expect(r.problems).toEqual([]);
    expect(r.anchors).toEqual([{ kind: "witness", name: "witness witness.test/w1", treeSize: cp.treeSize, rootHash: cp.rootHash }]);
    expect(r.notes.join("\n")).toMatch(/1 cosignature by witnesses whose keys were not given was ignored/);
    expect(r.notes.join("\n")).toMatch(/other log origins \(someone\.else\/log\) were ignored/);
    db.$client.close();

    // An attacker edits the stored root (to match a rewritten log): the row no longer verifies.
    const raw = new Database(path.join(dir, "runledger.sqlite"));
    raw.exec("DROP TRIGGER witness_cosignatures_no_update");
    raw
      .prepare("UPDATE witness_cosignatures SET root_hash = ? WHERE witness_name = 'witness.test/w1' AND origin <> 'someone.else/log'")
      .run("ab".repeat(32));
    r = witnessAnchors(raw, [wkey.vkey]);
    raw.close();
    expect(r.anchors).toEqual([]);
    expect(r.problems).toEqual([
      expect.stringMatching(
        /^cosignature #1 by witness witness\.test\/w1 \(tree size 5\) does not verify under the witness key witness\.test\/w1\+[0-9a-f]{8} \(forged or altered cosignature\)$/,
      ),
    ]);
  });

  it("rows are append-only in the live database", () => {
    const { db, keys, event, cosign } = setup();
    event(0);
    cosign(db, createAuditCheckpoint(db, keys, "t").checkpoint);
    expect(() => db.$client.exec("DELETE FROM witness_cosignatures")).toThrow(/append-only: DELETE rejected/);
    expect(() => db.$client.exec("UPDATE witness_cosignatures SET tree_size = 1")).toThrow(/append-only: UPDATE rejected/);
    db.$client.close();
  });

  it("lag: events more than 20 minutes older than the newest must be cosigned", () => {
    const { db, event } = setup();
    expect(WITNESS_MAX_LAG_MINUTES).toBe(20);
    for (const m of [0, 1, 2]) event(m); // seq 1..3
    expect(witnessLagProblem(db.$client, 0)).toBeNull(); // all within 20 minutes of the newest
    event(23); // seq 4: seq 1 is now 23 minutes older than the newest
    expect(witnessLagProblem(db.$client, 0)).toBe(
      "witness lag: 4 events from seq 1 on are not covered by any witness cosignatures (largest cosigned tree size 0), and the oldest of them (2026-01-01T12:00:00.000Z) is 23 minutes older than the newest event (2026-01-01T12:23:00.000Z); at most 20 minutes are allowed",
    );
    expect(witnessLagProblem(db.$client, 2)).toMatch(/^witness lag: 2 events from seq 3 on/); // seq 3 (12:02) is 21 minutes behind
    expect(witnessLagProblem(db.$client, 3)).toBeNull(); // only seq 4 uncovered: it is the newest
    db.$client.close();
  });

  it("a bundle carries the cosignatures (cosignatures.json) and they check the same way offline", () => {
    const { dir, db, keys, event, wkey, cosign } = setup();
    for (let i = 0; i < 3; i++) event(i);
    const cp = createAuditCheckpoint(db, keys, "t", { at: new Date(Date.UTC(2026, 0, 1, 12, 3)).toISOString() }).checkpoint;
    cosign(db, cp);
    event(30); // 27 minutes after the checkpoint event: the checkpoint event (seq 4) is now out of the lag
    const bundle = path.join(dir, "bundle");
    fs.mkdirSync(bundle);
    writeWitnessBundleFiles(db, bundle, keys.fingerprint);
    const file = JSON.parse(fs.readFileSync(path.join(bundle, BUNDLE_COSIGNATURES_FILE), "utf8")) as {
      origin: string;
      cosignatures: { checkpointNote: string; cosignatureLine: string }[];
    };
    expect(file.origin).toBe(defaultLogOrigin(keys.fingerprint));
    expect(file.cosignatures[0]!.checkpointNote).toBe(
      formatCheckpointBody({ origin: file.origin, treeSize: cp.treeSize, rootHash: cp.rootHash }),
    );
    expect(file.cosignatures[0]!.cosignatureLine).toMatch(/^— witness\.test\/w1 \S+\n$/);
    const r = witnessAnchorsForBundle(bundle, [wkey], listAuditCheckpoints(db));
    expect(r.problems).toEqual([]);
    expect(r.anchors).toEqual([{ kind: "witness", name: "witness witness.test/w1", treeSize: cp.treeSize, rootHash: cp.rootHash }]);
    const facts = tailFactsOf(iterateAuditEvents(db), cp.treeSize);
    expect(facts).toMatchObject({ count: 2, firstSeq: cp.treeSize + 1 });
    expect(witnessLagProblemFor(facts, cp.treeSize)).toBe(witnessLagProblem(db.$client, cp.treeSize));
    expect(witnessLagProblemFor(facts, cp.treeSize)).toMatch(/^witness lag: 2 events from seq 4 on/);
    db.$client.close();
  });
});
