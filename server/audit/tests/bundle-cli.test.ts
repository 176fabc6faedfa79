/**
 * Bundles (write, verify offline, detect a damaged line) and the `audit verify` / `audit checkpoint-export`
 * commands: exit codes 0 (intact), 1 (damaged, naming the first bad seq), 2 (usage), and JSON output.
 * The fixture's events are synthetic (no table rows behind them), so these runs pass --no-content.
 */
import { beforeAll, describe, expect, it } from "vitest";
import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { auditVerifyCommand, type CliIo } from "@/server/cli/audit-verify";
import { loadAuditPublicKey } from "../keys";
import { verifyBundle, writeBundleAuditFiles, BUNDLE_EVENTS_FILE } from "../bundle";
import { buildFixture, copyFixture, tamper, tempDir, type Fixture } from "./ledger-fixture";

let f: Fixture;
beforeAll(() => {
  f = buildFixture();
});

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const io: CliIo = { out: (t) => (out += t), err: (t) => (err += t) };
  const code = await auditVerifyCommand(argv, io);
  return { code, out, err };
}

function writeBundle(dataDir: string): string {
  const bundle = tempDir("bundle");
  const sqlite = new Database(path.join(dataDir, "runledger.sqlite"), { readonly: true });
  const written = writeBundleAuditFiles(sqlite, bundle, loadAuditPublicKey(dataDir));
  sqlite.close();
  expect(written).toMatchObject({ events: f.events, checkpoints: 2 });
  return bundle;
}

describe("audit bundles", () => {
  it("writes a bundle that verifies offline, and detects an edited line", async () => {
    const bundle = writeBundle(f.dir);
    expect(fs.readdirSync(bundle).sort()).toEqual(["checkpoints.json", "events.jsonl", "public-key.pem"]);
    const r = await verifyBundle(bundle);
    expect(r).toMatchObject({ ok: true, eventsChecked: 52, checkpointsChecked: 2, keySource: "bundle" });

    const file = path.join(bundle, BUNDLE_EVENTS_FILE);
    const lines = fs.readFileSync(file, "utf8").split("\n");
    const row = JSON.parse(lines[11]!);
    row.role = "admin";
    lines[11] = JSON.stringify(row);
    fs.writeFileSync(file, lines.join("\n"));
    expect(await verifyBundle(bundle)).toMatchObject({
      ok: false,
      firstBadSeq: 12,
      problem: "seq 12: leaf hash does not match its content (edited?)",
    });

    lines[11] = "{not json";
    fs.writeFileSync(file, lines.join("\n"));
    expect(await verifyBundle(bundle)).toMatchObject({
      ok: false,
      firstBadSeq: 12,
      problem: "events.jsonl line 12 is not valid JSON (damaged bundle?)",
    });
  });

  it("detects lines removed from a bundle", async () => {
    const bundle = writeBundle(f.dir);
    const file = path.join(bundle, BUNDLE_EVENTS_FILE);
    const lines = fs.readFileSync(file, "utf8").trimEnd().split("\n");
    fs.writeFileSync(file, lines.slice(0, 35).join("\n") + "\n");
    const r = await verifyBundle(bundle);
    expect(r.ok).toBe(false);
    expect(r.problem).toBe("checkpoint #2 covers 41 events but the log has 35 (truncated?)");
  });
});

describe("audit verify command", () => {
  it("exits 0 on an intact data directory and prints a summary", async () => {
    const { code, out } = await run(["verify", "--no-content", "--data-dir", f.dir]);
    expect(code).toBe(0);
    expect(out).toContain("INTACT");
    expect(out).toContain("events checked:      52");
  });

  it("prints one JSON object with --json", async () => {
    const { code, out } = await run(["audit", "verify", "--no-content", "--data-dir", f.dir, "--json"]);
    expect(code).toBe(0);
    const parsed = JSON.parse(out);
    expect(parsed).toMatchObject({ ok: true, eventsChecked: 52, firstBadSeq: null, workers: 0 }); // small log: one pass
    const parallel = JSON.parse((await run(["verify", "--no-content", "--data-dir", f.dir, "--workers", "2", "--json"])).out);
    expect(parallel).toMatchObject({ ok: true, eventsChecked: 52, workers: 2 });
  });

  it("exits 1 on a damaged ledger and names the first bad seq", async () => {
    const dir = copyFixture(f, "cli-damaged");
    tamper(dir, (db) => db.prepare("DELETE FROM audit_events WHERE seq = 33").run());
    const { code, out } = await run(["verify", "--no-content", "--data-dir", dir]);
    expect(code).toBe(1);
    expect(out).toContain("DAMAGED");
    expect(out).toContain("first bad seq:       33");
    expect(out).toContain("seq 33 missing: expected 33, found 34 (deleted row?)");
  });

  it("exits 2 on usage errors", async () => {
    expect((await run(["verify", "--no-content", "--data-dir", f.dir, "--bundle", f.dir])).code).toBe(2);
    expect((await run(["verify", "--no-content", "--frobnicate"])).code).toBe(2);
    expect((await run(["nonsense"])).code).toBe(2);
    expect((await run([])).code).toBe(2);
    expect((await run(["verify", "--no-content", "--data-dir", path.join(f.dir, "missing")])).code).toBe(2);
    expect((await run(["checkpoint-export"])).code).toBe(2);
    expect((await run(["verify", "--no-content", "--data-dir", f.dir, "--workers", "many"])).code).toBe(2);
  });

  it("exports a trusted checkpoint that later catches a truncated log, and verifies bundles", async () => {
    const dir = copyFixture(f, "cli-export");
    const out = path.join(tempDir("auditor"), "trusted.json");
    const exported = await run(["checkpoint-export", "--data-dir", dir, "--key-dir", f.keyDir, "--out", out, "--new"]);
    expect(exported.code, exported.err).toBe(0);
    const trusted = JSON.parse(fs.readFileSync(out, "utf8"));
    expect(trusted).toMatchObject({ format: "runledger-audit-checkpoint/1", checkpointId: 3, treeHead: { treeSize: 52 } });
    expect((await run(["verify", "--no-content", "--data-dir", dir, "--trusted-checkpoint", out])).code).toBe(0);

    tamper(dir, (db) => {
      db.prepare("DELETE FROM audit_events WHERE seq > 45").run();
      db.prepare("DELETE FROM audit_checkpoints WHERE id = 3").run();
    });
    expect((await run(["verify", "--no-content", "--data-dir", dir])).code).toBe(0); // the data alone cannot tell
    const caught = await run(["verify", "--no-content", "--data-dir", dir, "--trusted-checkpoint", out, "--json"]);
    expect(caught.code).toBe(1);
    expect(JSON.parse(caught.out).problem).toBe("log has 45 events but the trusted checkpoint covers 52 (truncated?)");

    const bundle = writeBundle(f.dir);
    expect((await run(["verify", "--no-content", "--bundle", bundle])).code).toBe(0);
  });
});
