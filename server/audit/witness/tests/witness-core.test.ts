/**
 * The witness's decisions (witness.ts) on a real key directory: cosigns a fresh log and its growth, persists its
 * state, and answers each refusal of c2sp.org/tlog-witness with the right status: rollback, fork at the same
 * size, fork behind a bad consistency proof, stale old size (409 + size), unknown origin, foreign key, malformed.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { consistencyProof, merkleRoot } from "@/server/audit/merkle";
import { signCheckpointNote, logVerifierKey, formatCheckpointBody } from "../checkpoint-note";
import { parseSignatureLine, parseSignedNote } from "../note";
import { verifyCosignature } from "../cosignature";
import { Witness, formatAddCheckpointBody, TLOG_SIZE_CONTENT_TYPE } from "../witness";
import { loadOrCreateWitnessIdentity, lockWitnessDir } from "../witness-files";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const ORIGIN = "runledger.test/log";
const leaves = (n: number, tag = "a") => Array.from({ length: n }, (_, i) => crypto.createHash("sha256").update(`${tag}${i}`).digest());

function setup() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "witness-core-"));
  dirs.push(dir);
  const log = crypto.generateKeyPairSync("ed25519");
  const { identity } = loadOrCreateWitnessIdentity(dir, "witness.test/w1");
  let clock = 1_700_000_000_000;
  const witness = new Witness(identity, [logVerifierKey(ORIGIN, log.publicKey)], dir, () => (clock += 1000));
  const note = (ls: Buffer[], key = log.privateKey, origin = ORIGIN) =>
    signCheckpointNote(key, { origin, treeSize: ls.length, rootHash: merkleRoot(ls).toString("hex") });
  const add = (oldSize: number, ls: Buffer[], opts: { proof?: Buffer[]; key?: crypto.KeyObject; origin?: string } = {}) => {
    const proof = opts.proof ?? (oldSize > 0 && oldSize < ls.length ? consistencyProof(oldSize, ls) : []);
    return witness.addCheckpoint(formatAddCheckpointBody({ oldSize, proof, note: note(ls, opts.key, opts.origin) }));
  };
  return { dir, log, identity, witness, add };
}

describe("witness", () => {
  it("cosigns a fresh log, then its growth with a consistency proof, and persists the state", () => {
    const { dir, identity, add, log } = setup();
    const all = leaves(10);
    const first = add(0, all.slice(0, 4));
    expect(first.status).toBe(200);
    const c = verifyCosignature(
      identity.verifierKey,
      formatCheckpointBody({ origin: ORIGIN, treeSize: 4, rootHash: merkleRoot(all.slice(0, 4)).toString("hex") }),
      parseSignatureLine(first.body),
    );
    expect(c?.timestamp).toBe(1_700_000_001);
    expect(add(4, all).status).toBe(200);
    expect(add(10, all).status).toBe(200); // same size, same root: cosigned again

    // A new process on the same directory continues from the persisted size.
    const again = new Witness(identity, [logVerifierKey(ORIGIN, log.publicKey)], dir);
    const stale = again.addCheckpoint(
      formatAddCheckpointBody({
        oldSize: 4,
        proof: consistencyProof(4, all),
        note: signCheckpointNote(log.privateKey, { origin: ORIGIN, treeSize: 10, rootHash: merkleRoot(all).toString("hex") }),
      }),
    );
    expect(stale).toEqual({ status: 409, contentType: TLOG_SIZE_CONTENT_TYPE, body: "10\n" });

    // GET /checkpoint/<origin>: the log's note with the log signature and this witness's cosignature.
    const latest = again.latestCheckpoint(ORIGIN);
    expect(latest.status).toBe(200);
    const n = parseSignedNote(latest.body);
    expect(n.text).toContain(`${ORIGIN}\n10\n`);
    expect(n.signatures.map((s) => s.name)).toEqual([ORIGIN, "witness.test/w1"]);
    expect(verifyCosignature(identity.verifierKey, n.text, n.signatures[1]!)).not.toBeNull();
  });

  it("refuses a rollback, a same-size fork and a fork hidden behind a bad proof, and records the evidence", () => {
    const { dir, add } = setup();
    const honest = leaves(8);
    expect(add(0, honest).status).toBe(200);
    // Rollback: a smaller tree.
    expect(add(0, honest.slice(0, 5))).toMatchObject({ status: 409, body: "8\n" });
    expect(add(8, honest.slice(0, 5)).status).toBe(400); // old size larger than the checkpoint
    // Fork at the same size: one leaf rewritten.
    const forged = [...honest];
    forged[2] = crypto.createHash("sha256").update("forged").digest();
    expect(add(8, forged)).toMatchObject({ status: 409, contentType: TLOG_SIZE_CONTENT_TYPE, body: "8\n" });
    // Fork that grows: the proof from 8 cannot link the forged tree to the cosigned root.
    const forgedLonger = [...forged, ...leaves(4, "b")];
    expect(add(8, forgedLonger).status).toBe(422);
    expect(add(8, forgedLonger, { proof: [] }).status).toBe(422);
    const evidence = fs
      .readFileSync(path.join(dir, "evidence.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { kind: string });
    expect(evidence.map((e) => e.kind)).toEqual(["fork", "inconsistent", "inconsistent"]);
    // The honest continuation is still accepted.
    expect(add(8, [...honest, ...leaves(3, "c")]).status).toBe(200);
  });

  it("answers 404 for an unknown origin, 403 for a foreign key, 400 for malformed input", () => {
    const { witness, add } = setup();
    const ls = leaves(3);
    expect(add(0, ls, { origin: "someone.else/log" }).status).toBe(404);
    const other = crypto.generateKeyPairSync("ed25519");
    const foreign = add(0, ls, { key: other.privateKey });
    expect(foreign.status).toBe(403);
    expect(foreign.body).toMatch(/no signature by a known key/);
    expect(witness.addCheckpoint("old 0\n\nnot a note").status).toBe(400);
    expect(witness.addCheckpoint("garbage").status).toBe(400);
    // A signature line by the log's key name and ID that does not verify: 403, not ignored.
    const good = signCheckpointNote(crypto.generateKeyPairSync("ed25519").privateKey, {
      origin: ORIGIN,
      treeSize: 3,
      rootHash: merkleRoot(ls).toString("hex"),
    });
    expect(witness.addCheckpoint(formatAddCheckpointBody({ oldSize: 0, proof: [], note: good })).status).toBe(403);
  });

  it("keeps one serving process per key directory and a 0600 key", () => {
    const { dir } = setup();
    expect(fs.statSync(path.join(dir, "witness-ed25519.key")).mode & 0o777).toBe(0o600);
    const release = lockWitnessDir(dir);
    fs.writeFileSync(path.join(dir, "witness.lock"), `${process.ppid}\n`); // a live process that is not us
    expect(() => lockWitnessDir(dir)).toThrow(/another witness \(pid \d+\) is serving/);
    release();
    expect(() => loadOrCreateWitnessIdentity(dir, "other.name/w")).toThrow(/cannot become "other.name\/w"/);
  });
});
