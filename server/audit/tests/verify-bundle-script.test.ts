/**
 * The standalone bundle verifier (server/audit/report/verify-bundle.mjs) as an auditor runs it: a real bundle is
 * exported from a test app, copied to a temporary folder away from the project, and `node verify-bundle.mjs` runs
 * THERE (cwd = that folder, so it cannot import the project). Checks: exit 0 on the genuine bundle and the same
 * verdict as `audit verify --bundle` (the CLI command, in process); anchoring with a kept trusted checkpoint; and
 * real tampering (edited event line, rewritten-and-rechained event, edited checkpoint, removed event, truncated
 * tail with its checkpoints, edited report facts, foreign key) gives exit 1 naming the problem; a key rotation is
 * followed from either key; a witness cosignature anchors the log and a cosignature of another history is a split
 * view. Also: the script
 * imports only node: modules, and its RFC 8785 canonical JSON equals the server's on awkward values.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eq } from "drizzle-orm";
import { users } from "@/db/schema";
import { canonicalJson } from "@/contracts/canonical";
import { exportReportBundle } from "@/server/audit/report/export-bundle";
import { VERIFIER_SCRIPT_SOURCE } from "@/server/audit/report/bundle-layout";
import { auditVerifyCommand } from "@/server/cli/audit-verify";
import { actorOf } from "@/server/users/service";
import { DEMO_USERS } from "@/server/demo/seed";
import { createTestApp, irisConfig, type TestApp } from "@/server/tests/test-app";
import { generateAuditKeys } from "@/server/audit/keys";
import { rotateAuditKey } from "@/server/audit/key-rotation";
import type { SigningKeys } from "@/server/audit/key-custody";
import { defaultLogOrigin, formatCheckpointBody } from "@/server/audit/witness/checkpoint-note";
import { cosignNote } from "@/server/audit/witness/cosignature";
import { SIG_TYPE_COSIGNATURE_V1, formatVerifierKey, rawEd25519PublicKey } from "@/server/audit/witness/note";
import { insertCosignature } from "@/server/audit/witness/store";
import { listAuditCheckpoints } from "@/server/audit/checkpoints";

let app: TestApp;
let tmp: string;
let exported: string;
let modelVersionId: number;
let copies = 0;

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- verifier JSON read field by field; the assertions check its shape
type VerdictJson = Record<string, any>;
type ScriptResult = { code: number | null; stdout: string; stderr: string; json: VerdictJson | null };

/** A fresh copy of the exported bundle in its own temporary folder, outside the project. */
function copyBundle(): string {
  const dir = path.join(tmp, `copy-${++copies}`);
  fs.cpSync(exported, dir, { recursive: true });
  return dir;
}

function copyBundleFrom(source: string): string {
  const dir = path.join(tmp, `copy-${++copies}`);
  fs.cpSync(source, dir, { recursive: true });
  return dir;
}

function runScript(dir: string, args: string[] = []): ScriptResult {
  const r = spawnSync(process.execPath, ["verify-bundle.mjs", ...args], {
    cwd: dir,
    encoding: "utf8",
    env: { PATH: process.env.PATH ?? "", NODE_ENV: "production" },
  });
  let json: ScriptResult["json"] = null;
  if (args.includes("--json")) {
    try {
      json = JSON.parse(r.stdout) as Record<string, unknown>;
    } catch {
      json = null;
    }
  }
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, json };
}

async function cliVerify(dir: string, extra: string[] = []): Promise<{ code: number; json: VerdictJson }> {
  let out = "";
  const code = await auditVerifyCommand(["verify", "--bundle", dir, "--json", ...extra], {
    out: (t) => void (out += t),
    err: (t) => void (out += t),
  });
  return { code, json: JSON.parse(out) as VerdictJson };
}

const readLines = (dir: string) => fs.readFileSync(path.join(dir, "events.jsonl"), "utf8").split("\n").filter(Boolean);
const writeLines = (dir: string, lines: string[]) => fs.writeFileSync(path.join(dir, "events.jsonl"), lines.join("\n") + "\n");
const sha = (s: string | Buffer) => crypto.createHash("sha256").update(s).digest("hex");

beforeAll(async () => {
  app = createTestApp();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-standalone-"));
  const { id } = await app
    .as("engineer")
    .runs.create({ experimentId: app.experimentId, config: irisConfig({ epochs: 3 }), rationale: "standalone verifier test" });
  await app.orchestrator.waitFor(id);
  // Renamed twice after launch (run.annotate): the script judges run.create by the first rename's `from`, the row by the last.
  await app.as("engineer").runs.annotate({ runId: id, name: "standalone baseline" });
  await app.as("engineer").runs.annotate({ runId: id, name: "standalone baseline v2" });
  const v = await app.as("engineer").models.register({ runId: id, modelName: "iris-standalone" });
  const auditor = actorOf(app.db.select().from(users).where(eq(users.email, DEMO_USERS[3]!.email)).get()!);
  exported = path.join(tmp, "exported");
  modelVersionId = v.modelVersionId;
  exportReportBundle({ db: app.db, auditKeys: app.auditKeys }, auditor, v.modelVersionId, exported);
  fs.writeFileSync(path.join(tmp, "server-key.pem"), app.auditKeys.publicKeyPem);
}, 90_000);
afterAll(() => {
  app?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe("the genuine bundle", () => {
  it("ships the script and lists it in the manifest", () => {
    expect(fs.readFileSync(path.join(exported, "verify-bundle.mjs"), "utf8")).toBe(fs.readFileSync(VERIFIER_SCRIPT_SOURCE, "utf8"));
    const manifest = JSON.parse(fs.readFileSync(path.join(exported, "manifest.json"), "utf8")) as { files: Record<string, unknown> };
    expect(manifest.files["verify-bundle.mjs"]).toBeDefined();
    expect(fs.readFileSync(path.join(exported, "report.html"), "utf8")).toContain(
      "node verify-bundle.mjs [--public-key FILE] [--trusted-checkpoint FILE] [--witness-key FILE] [--json]",
    );
  });

  it("verifies away from the project (exit 0), says which levels it proved, and agrees with audit verify --bundle", async () => {
    const dir = copyBundle();
    const r = runScript(dir, ["--json"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const j = r.json!;
    expect(j).toMatchObject({ ok: true, anchored: false, keySource: "bundle", firstBadSeq: null, problems: [] });
    expect(j.levels.chain.ok).toBe(true);
    expect(j.levels.content.ok).toBe(true);
    expect(j.levels.content.checked).toBeGreaterThan(3);
    expect(j.notes.join(" ")).toMatch(/could have rewritten or truncated history/);

    const cli = await cliVerify(dir);
    expect(cli.code).toBe(0);
    for (const k of ["ok", "anchored", "eventsChecked", "checkpointsChecked", "keyFingerprint", "latestCheckpoint", "unsignedTail"])
      expect(j[k], k).toEqual(cli.json[k]);
    expect(j.levels.chain).toEqual(cli.json.levels.chain);
    expect(j.levels.content.skipped).toBeUndefined();
    expect(j.levels.content.ok).toBe(cli.json.levels.content.ok);

    const text = runScript(dir);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/VERIFIED/);
    expect(text.stdout).toMatch(/chain: +intact/);
    expect(text.stdout).toMatch(/content: +intact/);
    expect(text.stdout).toMatch(/anchored: no/);
  });

  it("anchors to a trusted checkpoint kept outside the bundle; --require-anchor fails without one; a foreign key fails", () => {
    const dir = copyBundle();
    const kept = path.join(tmp, "kept-checkpoint.json");
    fs.copyFileSync(path.join(dir, "trusted-checkpoint.json"), kept);
    const anchored = runScript(dir, ["--json", "--trusted-checkpoint", kept, "--public-key", path.join(tmp, "server-key.pem")]);
    expect(anchored.code).toBe(0);
    expect(anchored.json).toMatchObject({ ok: true, anchored: true, keySource: "given" });
    expect(anchored.json!.levels.anchor.treeSize).toBe(JSON.parse(fs.readFileSync(kept, "utf8")).treeHead.treeSize);

    const unanchored = runScript(dir, ["--require-anchor"]);
    expect(unanchored.code).toBe(1);
    expect(unanchored.stdout).toMatch(/--require-anchor: the log is not anchored/);

    const foreign = path.join(tmp, "foreign.pem");
    fs.writeFileSync(foreign, crypto.generateKeyPairSync("ed25519").publicKey.export({ type: "spki", format: "pem" }));
    const r = runScript(dir, ["--public-key", foreign]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/signed with key SHA256:[0-9a-f]{64}, not the trusted server key/);
  });

  it("usage errors exit 2", () => {
    const dir = copyBundle();
    expect(runScript(dir, ["--bogus"]).code).toBe(2);
    expect(runScript(dir, ["--public-key", path.join(tmp, "no-such.pem")]).stderr).toMatch(/public key file not found/);
  });
});

describe("tampered bundles fail (exit 1) naming the problem, as audit verify --bundle does", () => {
  it("a PROV document that contradicts the recorded lineage (another checkpoint hash)", async () => {
    const dir = copyBundle();
    const file = path.join(dir, "lineage.prov.json");
    const prov = JSON.parse(fs.readFileSync(file, "utf8")) as { entity: Record<string, Record<string, unknown>> };
    const ck = Object.keys(prov.entity).find((id) => id.startsWith("rl:checkpoint-"))!;
    prov.entity[ck]!["runledger:sha256"] = "0".repeat(64);
    fs.writeFileSync(file, JSON.stringify(prov));
    const lineage = new RegExp(`lineage\\.prov\\.json gives ${ck} runledger:sha256 "0{64}", but the recorded checkpoint \\d+ has sha256`);
    const r = runScript(dir, ["--json"]);
    expect(r.code).toBe(1);
    expect(r.json!.levels.content.problems.map((p: VerdictJson) => p.message).join("\n")).toMatch(lineage);
    const cli = await cliVerify(dir);
    expect(cli.code).toBe(1);
    expect(cli.json.levels.content.problems.map((p: VerdictJson) => p.message).join("\n")).toMatch(lineage);
  });

  it("an edited event line", async () => {
    const dir = copyBundle();
    const lines = readLines(dir);
    const i = lines.findIndex((l) => l.includes('"action":"run.create"'));
    lines[i] = lines[i]!.replace('"actorName":"Erin Engineer"', '"actorName":"Mallory"');
    writeLines(dir, lines);
    const r = runScript(dir, ["--json"]);
    expect(r.code).toBe(1);
    expect(r.json!.problem).toBe(`seq ${i + 1}: leaf hash does not match its content (edited?)`);
    expect(r.json!.firstBadSeq).toBe(i + 1);
    expect((await cliVerify(dir)).code).toBe(1);
  });

  it("an event rewritten with recomputed leaf and chain hashes: the signed Merkle roots no longer match", async () => {
    const dir = copyBundle();
    const rows = readLines(dir).map((l) => JSON.parse(l) as VerdictJson);
    const i = rows.findIndex((r) => r.action === "run.create");
    rows[i]!.actorName = "Mallory";
    let prev = Buffer.alloc(32);
    for (const row of rows) {
      const body = {
        seq: row.seq,
        at: row.at,
        actorId: row.actorId,
        actorName: row.actorName,
        role: row.role,
        action: row.action,
        entityType: row.entityType,
        entityId: row.entityId,
        payload: JSON.parse(row.payload),
      };
      row.leafHash = sha(Buffer.concat([Buffer.from([0]), Buffer.from(canonicalJson(body))]));
      prev = crypto.createHash("sha256").update(prev).update(Buffer.from(row.leafHash, "hex")).digest();
      row.chainHash = prev.toString("hex");
    }
    writeLines(
      dir,
      rows.map((r) => JSON.stringify(r)),
    );
    const r = runScript(dir, ["--json"]);
    expect(r.code).toBe(1);
    expect(r.json!.problem).toMatch(/checkpoint #\d+ \(tree size \d+\) root does not match the events \(rewritten history\?\)/);
    expect((await cliVerify(dir)).code).toBe(1);
  });

  it("an edited checkpoint", async () => {
    const dir = copyBundle();
    const file = path.join(dir, "checkpoints.json");
    const cps = JSON.parse(fs.readFileSync(file, "utf8")) as { id: number; at: string }[];
    cps[0]!.at = "2001-01-01T00:00:00.000Z";
    fs.writeFileSync(file, JSON.stringify(cps, null, 2));
    const r = runScript(dir);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`checkpoint #${cps[0]!.id} signature is not valid for the server key (altered checkpoint?)`);
    expect((await cliVerify(dir)).code).toBe(1);
  });

  it("all checkpoints deleted", async () => {
    const dir = copyBundle();
    fs.writeFileSync(path.join(dir, "checkpoints.json"), "[]");
    const r = runScript(dir, ["--json"]);
    expect(r.code).toBe(1);
    expect(r.json!.problems.join("\n")).toMatch(/seq \d+ records checkpoint #1, but checkpoints.json has no such checkpoint \(deleted\?\)/);
    expect((await cliVerify(dir)).code).toBe(1);
  });

  it("a removed event", async () => {
    const dir = copyBundle();
    const lines = readLines(dir);
    lines.splice(4, 1);
    writeLines(dir, lines);
    const r = runScript(dir, ["--json"]);
    expect(r.code).toBe(1);
    expect(r.json!.problem).toBe("seq 5 missing: expected 5, found 6 (deleted row?)");
    expect((await cliVerify(dir)).code).toBe(1);
  });

  it("a tail truncated with its checkpoints verifies on its own, but not against the trusted checkpoint kept earlier", () => {
    const dir = copyBundle();
    const kept = path.join(tmp, "kept-before-truncation.json");
    fs.copyFileSync(path.join(dir, "trusted-checkpoint.json"), kept);
    const cps = (JSON.parse(fs.readFileSync(path.join(dir, "checkpoints.json"), "utf8")) as { id: number; treeSize: number }[]).sort(
      (a, b) => a.id - b.id,
    );
    expect(cps.length).toBeGreaterThan(1);
    const keep = cps.slice(0, -1);
    const rows = readLines(dir).map((l) => JSON.parse(l) as { seq: number; action: string; payload: string });
    // Cut right after the event that records the last kept checkpoint: everything later, and later checkpoints, go.
    const cutAt = rows.find((r) => r.action === "audit.checkpoint" && JSON.parse(r.payload).checkpointId === keep.at(-1)!.id)!.seq;
    writeLines(dir, readLines(dir).slice(0, cutAt));
    fs.writeFileSync(path.join(dir, "checkpoints.json"), JSON.stringify(keep, null, 2));
    fs.rmSync(path.join(dir, "report.json")); // the report cites the removed export event; the chain is what matters here
    const alone = runScript(dir, ["--json"]);
    expect(alone.json!.levels.chain.ok).toBe(true);
    const anchored = runScript(dir, ["--json", "--trusted-checkpoint", kept]);
    expect(anchored.code).toBe(1);
    expect(anchored.json!.levels.anchor.problem).toMatch(/^log has \d+ events but the trusted checkpoint covers \d+ \(truncated\?\)$/);
  });

  it("an edited fact in facts.json: the evaluation's recorded hash and the export's facts.json hash no longer match", async () => {
    const dir = copyBundle();
    const file = path.join(dir, "facts.json");
    const facts = JSON.parse(fs.readFileSync(file, "utf8")) as { records: { evaluation: { row: { id: number; metricsJson: string } }[] } };
    const ev = facts.records.evaluation.find((e) => e.row.metricsJson.includes('"accuracy"'))!;
    const metrics = JSON.parse(ev.row.metricsJson) as { accuracy: number };
    ev.row.metricsJson = JSON.stringify({ ...metrics, accuracy: 0.42 });
    fs.writeFileSync(file, JSON.stringify(facts) + "\n");
    const r = runScript(dir, ["--json"]);
    expect(r.code).toBe(1);
    expect(r.json!.levels.chain.ok).toBe(true);
    const messages = r.json!.levels.content.problems.map((p: { message: string }) => p.message).join("\n");
    expect(messages).toMatch(
      new RegExp(`evaluation ${ev.row.id}: metrics \\(incl\\. confusion matrix\\) does not match the ledger \\(event #\\d+ recorded`),
    );
    expect(messages).toMatch(/bundle facts\.json: facts\.json sha256 \(recorded by the export event\) does not match/);
    const cli = await cliVerify(dir);
    expect(cli.code).toBe(1);
    expect(cli.json.levels.content.ok).toBe(false);
  });

  it("a replaced weights file", async () => {
    const dir = copyBundle();
    const facts = JSON.parse(fs.readFileSync(path.join(dir, "facts.json"), "utf8")) as { weights: { file: string; sha256: string } };
    expect(facts.weights.file).toBe(`artifacts/${facts.weights.sha256}`);
    const bytes = fs.readFileSync(path.join(dir, facts.weights.file));
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 0xff, bytes.length - 1);
    fs.writeFileSync(path.join(dir, facts.weights.file), bytes);
    const r = runScript(dir, ["--json"]);
    expect(r.code).toBe(1);
    expect(r.json!.problems.join("\n")).toContain(`weights file was replaced: the ledger (event #`);
    expect(r.json!.problems.join("\n")).toContain(`recorded sha256 ${facts.weights.sha256}, the file's bytes hash to ${sha(bytes)}`);
    expect((await cliVerify(dir)).code).toBe(1);
  });

  it("edited report facts: the export event's hash no longer matches", () => {
    const dir = copyBundle();
    const file = path.join(dir, "report.json");
    const report = JSON.parse(fs.readFileSync(file, "utf8")) as { facts: { version: { weightsSha256: string } } };
    report.facts.version.weightsSha256 = "0".repeat(64);
    fs.writeFileSync(file, JSON.stringify(report, null, 2));
    const r = runScript(dir, ["--json"]);
    expect(r.code).toBe(1);
    expect(r.json!.levels.chain.ok).toBe(true);
    expect(r.json!.levels.content.problems.map((p: { field: string }) => p.field)).toContain("factsSha256");
    expect(r.json!.problem).toMatch(/report\.json facts hash .* but export event #\d+ recorded .* \(report edited\?\)/);
  });
});

type Cosig = {
  id: number;
  checkpointId: number;
  origin: string;
  treeSize: number;
  rootHash: string;
  witnessName: string;
  keyId: string;
  timestamp: number;
  signature: string;
  receivedAt: string;
};

/** A witness (its own key) cosigning the C2SP checkpoint note of (treeSize, rootHash) for the bundle's log origin. */
function witnessCosign(
  name: string,
  privateKey: crypto.KeyObject,
  cp: { id: number; treeSize: number; rootHash: string; keyFingerprint: string },
): Cosig {
  const origin = defaultLogOrigin(cp.keyFingerprint);
  const timestamp = Math.floor(Date.now() / 1000);
  const line = cosignNote(name, privateKey, formatCheckpointBody({ origin, treeSize: cp.treeSize, rootHash: cp.rootHash }), timestamp);
  const signature = line.trim().split(" ").at(-1)!;
  return {
    id: 1,
    checkpointId: cp.id,
    origin,
    treeSize: cp.treeSize,
    rootHash: cp.rootHash,
    witnessName: name,
    keyId: Buffer.from(signature, "base64").subarray(0, 4).toString("hex"),
    timestamp,
    signature,
    receivedAt: new Date().toISOString(),
  };
}

describe("witness cosignatures (C2SP cosignature/v1) as anchors", () => {
  const witness = crypto.generateKeyPairSync("ed25519").privateKey;
  const name = "auditor.example/witness";
  let keyFile: string;
  let witnessed: string;
  let cosigned: { id: number; treeSize: number; rootHash: string; keyFingerprint: string };
  beforeAll(() => {
    keyFile = path.join(tmp, "witness.vkey");
    fs.writeFileSync(keyFile, formatVerifierKey(name, SIG_TYPE_COSIGNATURE_V1, rawEd25519PublicKey(witness)) + "\n");
    // The witness cosigns the latest checkpoint; the app stores the cosignature; the export writes cosignatures.json.
    cosigned = listAuditCheckpoints(app.db).sort((a, b) => b.id - a.id)[0]!;
    const { id: _id, ...record } = witnessCosign(name, witness, cosigned);
    insertCosignature(app.db, record);
    witnessed = path.join(tmp, "witnessed");
    const auditor = actorOf(app.db.select().from(users).where(eq(users.email, DEMO_USERS[3]!.email)).get()!);
    exportReportBundle({ db: app.db, auditKeys: app.auditKeys }, auditor, modelVersionId, witnessed);
  });

  it("a valid cosignature by the witness key given anchors the log up to its tree size", async () => {
    const dir = copyBundleFrom(witnessed);
    const r = runScript(dir, ["--json", "--witness-key", keyFile, "--require-anchor"]);
    expect(r.code, r.stdout).toBe(0);
    expect(r.json!.levels.anchor).toMatchObject({
      anchored: true,
      treeSize: cosigned.treeSize,
      by: [{ kind: "witness", name: `witness ${name}`, treeSize: cosigned.treeSize }],
    });
    const cli = await cliVerify(dir, ["--witness-key", keyFile]);
    expect(cli.code).toBe(0);
    expect(cli.json.levels.anchor).toMatchObject({ anchored: true, treeSize: cosigned.treeSize });
    expect(runScript(dir, ["--require-anchor"]).code).toBe(1); // the same cosignature without the auditor's witness key anchors nothing
  });

  it("a cosignature over another history at the same size is a split view; an altered cosignature is forged", () => {
    const dir = copyBundleFrom(witnessed);
    const file = path.join(dir, "cosignatures.json");
    const real = JSON.parse(fs.readFileSync(file, "utf8")) as { cosignatures: Cosig[] };
    const rewrite = (c: Cosig) =>
      fs.writeFileSync(file, JSON.stringify({ ...real, cosignatures: [{ ...real.cosignatures[0]!, ...c, id: 1 }] }));
    rewrite(witnessCosign(name, witness, { ...cosigned, rootHash: sha("another history") }));
    const split = runScript(dir, ["--json", "--witness-key", keyFile]);
    expect(split.code).toBe(1);
    expect(split.json!.levels.anchor.problem).toBe(
      `witness ${name} (tree size ${cosigned.treeSize}) root does not match the events (split view: the witness cosigned a different history)`,
    );

    rewrite({ ...witnessCosign(name, witness, cosigned), treeSize: cosigned.treeSize - 1 });
    const r = runScript(dir, ["--json", "--witness-key", keyFile]);
    expect(r.code).toBe(1);
    expect(r.json!.problem).toMatch(
      /^cosignature #1 by witness .* does not verify under the witness key given \(forged or altered cosignature\)$/,
    );
  });
});

describe("key rotation (audit.keyRotate events endorsed by the old key)", () => {
  let rotated: string;
  let oldKeyFile: string;
  let newKeyFile: string;
  beforeAll(() => {
    const next = generateAuditKeys();
    oldKeyFile = path.join(tmp, "old-key.pem");
    newKeyFile = path.join(tmp, "new-key.pem");
    fs.writeFileSync(oldKeyFile, app.auditKeys.publicKeyPem);
    fs.writeFileSync(newKeyFile, next.publicKeyPem);
    // app.auditKeys follows the ledger (it becomes the new key once the rotation event is written): rotate from a snapshot.
    const current = (app.auditKeys as Partial<SigningKeys>).current?.() ?? app.auditKeys;
    rotateAuditKey(app.db, current, { keyDir: app.keyDir, newKeys: next });
    rotated = path.join(tmp, "rotated");
    const auditor = actorOf(app.db.select().from(users).where(eq(users.email, DEMO_USERS[3]!.email)).get()!);
    exportReportBundle({ db: app.db, auditKeys: next }, auditor, modelVersionId, rotated);
  });

  it("verifies from the first key and from the new key, as audit verify --bundle does", async () => {
    for (const key of [oldKeyFile, newKeyFile]) {
      const dir = path.join(tmp, `rotated-${path.basename(key)}`);
      fs.cpSync(rotated, dir, { recursive: true });
      const r = runScript(dir, ["--json", "--public-key", key]);
      expect(r.code, r.stdout).toBe(0);
      expect(r.json!.notes.join(" ")).toMatch(/signing key was rotated once/);
      const cli = await cliVerify(dir, ["--public-key", key]);
      expect(cli.code).toBe(0);
      expect(r.json!.levels.chain).toEqual(cli.json.levels.chain);
    }
  });

  it("a checkpoint after the rotation signed by a key no rotation introduced fails", () => {
    const dir = copyBundleFrom(rotated);
    const file = path.join(dir, "checkpoints.json");
    const cps = (
      JSON.parse(fs.readFileSync(file, "utf8")) as {
        id: number;
        treeSize: number;
        rootHash: string;
        at: string;
        keyFingerprint: string;
        signature: string;
      }[]
    ).sort((a, b) => a.id - b.id);
    const rogue = generateAuditKeys();
    const last = cps.at(-1)!;
    last.keyFingerprint = rogue.fingerprint;
    last.signature = crypto
      .sign(
        null,
        Buffer.from(canonicalJson({ treeSize: last.treeSize, rootHash: last.rootHash, at: last.at, keyFingerprint: last.keyFingerprint })),
        rogue.privateKey,
      )
      .toString("base64");
    fs.writeFileSync(file, JSON.stringify(cps));
    const r = runScript(dir, ["--public-key", oldKeyFile]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(
      `checkpoint #${last.id} (tree size ${last.treeSize}) was signed with key ${rogue.fingerprint}, which no valid key rotation introduced`,
    );
  });
});

describe("a table edited before the export (the operator's attack on content)", () => {
  it("an evaluation's accuracy changed in the database is exported as is, and the script names the evaluation and both hashes", async () => {
    const sqlite = app.db.$client;
    const row = sqlite.prepare("SELECT id, metrics_json AS m FROM evaluations WHERE partition = 'test' ORDER BY id LIMIT 1").get() as {
      id: number;
      m: string;
    };
    const metrics = JSON.parse(row.m) as Record<string, unknown>;
    sqlite.prepare("UPDATE evaluations SET metrics_json = ? WHERE id = ?").run(canonicalJson({ ...metrics, accuracy: 0.42 }), row.id);
    try {
      const dir = path.join(tmp, "tampered-table");
      const auditor = actorOf(app.db.select().from(users).where(eq(users.email, DEMO_USERS[3]!.email)).get()!);
      exportReportBundle({ db: app.db, auditKeys: app.auditKeys }, auditor, modelVersionId, dir);
      const r = runScript(dir, ["--json"]);
      expect(r.code).toBe(1);
      expect(r.json!.levels.chain.ok).toBe(true); // the ledger itself is intact: only the table lies
      const p = r.json!.levels.content.problems.find(
        (x: { entityType: string; field: string }) => x.entityType === "evaluation" && x.field === "metrics (incl. confusion matrix)",
      );
      expect(p).toMatchObject({
        entityId: String(row.id),
        recorded: expect.stringMatching(/^"[0-9a-f]{64}"$/),
        found: expect.stringMatching(/^"[0-9a-f]{64}"$/),
      });
      expect((await cliVerify(dir)).json.levels.content.ok).toBe(false);
    } finally {
      sqlite.prepare("UPDATE evaluations SET metrics_json = ? WHERE id = ?").run(row.m, row.id);
    }
  });
});

describe("the script itself", () => {
  it("imports only node: modules (no project code, no npm packages)", () => {
    const src = fs.readFileSync(VERIFIER_SCRIPT_SOURCE, "utf8");
    const specifiers = [...src.matchAll(/^\s*import\s[^;]*?from\s+["']([^"']+)["']/gm)].map((m) => m[1]!);
    expect(specifiers.length).toBeGreaterThan(2);
    for (const s of specifiers) expect(s).toMatch(/^node:/);
    expect(src).not.toMatch(/\brequire\s*\(|\bimport\s*\(/);
  });

  it("prints canonical JSON exactly as the server's RFC 8785 library does", async () => {
    const mod = (await import(VERIFIER_SCRIPT_SOURCE)) as { canonicalJson: (v: unknown) => string };
    const awkward: unknown[] = [
      {
        b: 1,
        a: [1e21, 1e-7, -0, 0.1 + 0.2, 123456789012345680000, 5e-324, -1.5e300],
        é: '\u2028\u0007"\\/',
        "\ud83d\ude00": null,
        A: true,
        "": {},
      },
      { "\u20ac": 1, "\r": 2, "1": 3, "\ufb33": 4, "\ud83d\ude00": 5, "\u00f6": 6, "10": 7 },
      ["x", { z: [{}, []], y: "line\nbreak\ttab" }, false],
      "plain",
      42,
    ];
    for (const v of awkward) expect(mod.canonicalJson(v)).toBe(canonicalJson(v));
    expect(() => mod.canonicalJson({ s: "\ud800" })).toThrow(/lone surrogate/);
    expect(() => mod.canonicalJson(Number.NaN)).toThrow();
  });
});
