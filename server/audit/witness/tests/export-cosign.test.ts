/**
 * A report export's own fresh checkpoint is cosigned before the bundle is written (export-cosigned.ts), with a
 * REAL witness process on loopback: the CLI export and the browser route (worker) both give a bundle whose newest
 * checkpoint carries the witness's cosignature (cosignatures.json, the bundle verifies anchored up to it, also with
 * the standalone verify-bundle.mjs). A witness that is down, or that never answers, fails nothing: the bundle says
 * it did not cosign, and the wait stays bounded.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestApp, irisConfig, type TestApp } from "@/server/tests/test-app";
import { actorFor } from "@/server/tests/upload-helpers";
import { verifyBundle } from "@/server/audit/bundle";
import { untarInto } from "@/server/audit/report/tar";
import { verifyReportBundle } from "@/server/audit/report/verify-report";
import { reportExportPost } from "@/server/http/report-export";
import { exportCommand } from "@/server/cli/export";
import { logOrigin, logVerifierKey } from "../checkpoint-note";
import { EXPORT_COSIGN_WAIT_MS } from "../fresh-cosign";
import { startWitnessProcess, type WitnessProcess } from "../witness-process";

const MODEL = "cosigned-export";
const SITE = "http://127.0.0.1:3000";
let app: TestApp;
let w: WitnessProcess;
let work: string;
const savedWitnesses = process.env.RUNLEDGER_WITNESSES;

type CosignaturesJson = {
  cosignatures: { treeSize: number; rootHash: string; witnessName: string }[];
  exportCheckpoint?: {
    checkpointId: number;
    treeSize: number;
    rootHash: string;
    waitedMs: number;
    witnesses: { url: string; witness: string; cosigned: boolean; reason: string | null }[];
  };
};
const readJson = <T>(dir: string, file: string) => JSON.parse(fs.readFileSync(path.join(dir, file), "utf8")) as T;

beforeAll(async () => {
  app = createTestApp();
  work = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-export-cosign-"));
  const { id } = await app
    .as("engineer")
    .runs.create({ experimentId: app.experimentId, config: irisConfig({ epochs: 1 }), rationale: "cosigned export" });
  await app.orchestrator.waitFor(id);
  await app.as("engineer").models.register({ runId: id, modelName: MODEL });
  w = await startWitnessProcess({
    logKey: logVerifierKey(logOrigin(app.auditKeys.fingerprint), app.auditKeys.publicKey).vkey,
    name: "witness.test/export",
  });
  fs.writeFileSync(path.join(work, "witness.vkey"), `${w.vkey}\n`);
}, 180_000);

afterAll(async () => {
  if (savedWitnesses === undefined) delete process.env.RUNLEDGER_WITNESSES;
  else process.env.RUNLEDGER_WITNESSES = savedWitnesses;
  await w?.stop();
  if (w) fs.rmSync(w.keyDir, { recursive: true, force: true });
  app?.close();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

async function cliExport(out: string): Promise<{ code: number; stdout: string; err: string }> {
  let stdout = "";
  let err = "";
  const code = await exportCommand(["--model", MODEL, "--out", out, "--data-dir", app.dataDir, "--key-dir", app.keyDir], {
    out: (t) => (stdout += t),
    err: (t) => (err += t),
  });
  return { code, stdout, err };
}

/** The bundle's newest checkpoint is the export's, and the witness cosigned exactly it. */
async function expectCosignedBundle(dir: string): Promise<void> {
  const checkpoints = readJson<{ id: number; treeSize: number; rootHash: string }[]>(dir, "checkpoints.json");
  const newest = checkpoints.reduce((m, c) => (c.treeSize > m.treeSize ? c : m));
  const cos = readJson<CosignaturesJson>(dir, "cosignatures.json");
  expect(cos.exportCheckpoint).toMatchObject({
    checkpointId: newest.id,
    treeSize: newest.treeSize,
    rootHash: newest.rootHash,
    witnesses: [{ url: w.url, witness: "witness.test/export", cosigned: true, reason: null }],
  });
  expect(cos.exportCheckpoint!.waitedMs).toBeLessThanOrEqual(EXPORT_COSIGN_WAIT_MS + 500);
  expect(cos.cosignatures).toContainEqual(
    expect.objectContaining({ treeSize: newest.treeSize, rootHash: newest.rootHash, witnessName: "witness.test/export" }),
  );
  expect(fs.readFileSync(path.join(dir, "README.txt"), "utf8")).toContain(`cosigned by witness witness.test/export (${w.url})`);
  // Anchored by the witness up to the newest checkpoint: the whole export is covered by the cosignature.
  const r = await verifyBundle(dir, { publicKeyPem: app.auditKeys.publicKeyPem, witnessKeys: [w.vkey], requireAnchor: true });
  expect(r.problems).toEqual([]);
  expect(r.levels.anchor).toMatchObject({ anchored: true, treeSize: newest.treeSize });
  const report = await verifyReportBundle(dir, { publicKeyPem: app.auditKeys.publicKeyPem });
  expect(report.problems).toEqual([]);
}

describe("a report export waits for its own checkpoint's cosignature", () => {
  it("CLI export: the bundle's newest checkpoint is cosigned; the standalone verifier anchors it", async () => {
    process.env.RUNLEDGER_WITNESSES = `${w.url}=${w.vkey}`;
    const out = path.join(work, "cli-bundle");
    const r = await cliExport(out);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`witness witness\\.test/export \\(${w.url.replace(/[.]/g, "\\.")}\\): cosigned this checkpoint`));
    await expectCosignedBundle(out);
    const newest = readJson<CosignaturesJson>(out, "cosignatures.json").exportCheckpoint!.treeSize;
    const script = spawnSync(
      process.execPath,
      ["verify-bundle.mjs", "--public-key", "public-key.pem", "--witness-key", path.join(work, "witness.vkey"), "--json"],
      { cwd: out, encoding: "utf8" },
    );
    expect(script.status, script.stderr + script.stdout).toBe(0);
    expect(JSON.parse(script.stdout)).toMatchObject({ ok: true, levels: { anchor: { anchored: true, treeSize: newest } } });
  }, 60_000);

  it("browser route (worker export): the downloaded bundle's newest checkpoint is cosigned", async () => {
    process.env.RUNLEDGER_WITNESSES = `${w.url}=${w.vkey}`;
    const id = (app.db.$client.prepare("SELECT id FROM model_versions ORDER BY id DESC LIMIT 1").get() as { id: number }).id;
    const req = new Request(`${SITE}/api/report/${id}?format=tar`, { method: "POST", headers: { host: "127.0.0.1:3000", origin: SITE } });
    const res = await reportExportPost(app, req, actorFor(app, "auditor"), String(id));
    expect(
      res.status,
      await res
        .clone()
        .text()
        .then((t) => t.slice(0, 300)),
    ).toBe(200);
    const dir = path.join(work, "route-bundle");
    untarInto(Buffer.from(await res.arrayBuffer()), dir);
    await expectCosignedBundle(dir);
  }, 60_000);

  it("a witness that is down, or never answers: the export succeeds within the bounded wait and the bundle says so", async () => {
    const closedPort = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, "127.0.0.1", () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    process.env.RUNLEDGER_WITNESSES = `http://127.0.0.1:${closedPort}=${w.vkey}`;
    const down = path.join(work, "down-bundle");
    const r = await cliExport(down);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/NOT cosigned \(unreachable: .*ECONNREFUSED.*\); the bundle says so/);
    const cos = readJson<CosignaturesJson>(down, "cosignatures.json").exportCheckpoint!;
    expect(cos.witnesses).toEqual([expect.objectContaining({ cosigned: false, reason: expect.stringMatching(/unreachable/) })]);
    expect(fs.readFileSync(path.join(down, "README.txt"), "utf8")).toMatch(
      /NOT cosigned by witness witness\.test\/export .* at export: unreachable/,
    );
    expect((await verifyReportBundle(down, { publicKeyPem: app.auditKeys.publicKeyPem })).problems).toEqual([]);

    // A witness that accepts the connection and never answers: the export waits EXPORT_COSIGN_WAIT_MS, no longer.
    const sockets: net.Socket[] = [];
    const silent = net.createServer((s) => sockets.push(s));
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", () => resolve()));
    process.env.RUNLEDGER_WITNESSES = `http://127.0.0.1:${(silent.address() as net.AddressInfo).port}=${w.vkey}`;
    try {
      const slow = path.join(work, "slow-bundle");
      const started = Date.now();
      expect((await cliExport(slow)).code).toBe(0);
      const took = Date.now() - started;
      const s = readJson<CosignaturesJson>(slow, "cosignatures.json").exportCheckpoint!;
      expect(s.witnesses).toEqual([
        expect.objectContaining({ cosigned: false, reason: `no cosignature within ${EXPORT_COSIGN_WAIT_MS} ms` }),
      ]);
      expect(s.waitedMs).toBeGreaterThanOrEqual(EXPORT_COSIGN_WAIT_MS - 50);
      expect(s.waitedMs).toBeLessThan(EXPORT_COSIGN_WAIT_MS + 500);
      console.log(`export with a silent witness: waited ${s.waitedMs} ms for the cosignature, whole export ${took} ms`);
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
    }
  }, 60_000);
});
