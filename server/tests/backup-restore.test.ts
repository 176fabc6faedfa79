/**
 * Backups taken while a real training run writes (server/backup, `npm run cli -- backup` / `restore`): the archive
 * holds the database (online backup), every artifact and the public key with a SHA-256 manifest, never the private
 * key; it restores into an empty directory to a copy that `audit verify` passes and whose artifacts all match the
 * manifest. Restore refuses a non-empty target and a tampered archive, leaving nothing behind.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eq } from "drizzle-orm";
import Database from "better-sqlite3";
import { checkpoints } from "@/db/schema";
import { auditVerifyCommand } from "@/server/cli/audit-verify";
import { backupCommand, restoreCommand } from "@/server/cli/backup";
import { BACKUP_ROOT, type BackupManifest } from "@/server/backup/backup";
import { readTar } from "@/server/backup/tar-stream";
import { createTestApp, irisConfig, type TestApp } from "./test-app";

let app: TestApp;
let tmp: string;
beforeAll(() => {
  app = createTestApp();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-backup-test-"));
});
afterAll(() => {
  app.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

function io() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (t: string) => void out.push(t), err: (t: string) => void err.push(t) }, out, err };
}

async function archiveEntries(file: string): Promise<Map<string, Buffer>> {
  const entries = new Map<string, Buffer>();
  await readTar(file, BACKUP_ROOT, async (e) => {
    if (e.type === "directory") return null;
    const parts: Buffer[] = [];
    entries.set(e.path, Buffer.alloc(0));
    return async (chunk) => {
      parts.push(Buffer.from(chunk));
      entries.set(e.path, Buffer.concat(parts));
    };
  });
  return entries;
}

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

describe("[backup] while a run trains", () => {
  let backupFile: string;
  let manifest: BackupManifest;

  it("backs up mid-run; the restored copy verifies and every artifact matches the manifest", async () => {
    const engineer = app.as("engineer");
    const { id: runId } = await engineer.runs.create({
      experimentId: app.experimentId,
      config: irisConfig({ epochs: 400 }),
      rationale: "backup while training",
    });
    // Mid-run: the first checkpoints are in, training goes on.
    for (let i = 0; i < 600 && app.db.select().from(checkpoints).where(eq(checkpoints.runId, runId)).all().length < 2; i++)
      await new Promise((r) => setTimeout(r, 100));
    expect((await engineer.runs.get({ id: runId })).status).toBe("running");

    backupFile = path.join(tmp, "backup.tar");
    const b = io();
    expect(await backupCommand(["--out", backupFile, "--data-dir", app.dataDir, "--json"], b.io), b.err.join("")).toBe(0);
    const statusAfterBackup = (await engineer.runs.get({ id: runId })).status;
    await engineer.runs.cancel({ id: runId, reason: "not needed any more" });
    await app.orchestrator.waitFor(runId);
    expect(statusAfterBackup, "the backup finished while the run was still training").toBe("running");

    const entries = await archiveEntries(backupFile);
    manifest = JSON.parse(entries.get("MANIFEST.json")!.toString("utf8")) as BackupManifest;
    const names = [...entries.keys()].filter((n) => n !== "MANIFEST.json");
    expect(names.sort()).toEqual(Object.keys(manifest.files).sort());
    // Only the database, artifacts and the public key: never a private key.
    expect(
      names.every((n) => n === "runledger.sqlite" || n === "audit-ed25519.pub" || /^artifacts\/[0-9a-f]{2}\/[0-9a-f]{64}$/.test(n)),
    ).toBe(true);
    expect(names).toContain("audit-ed25519.pub");
    for (const b of entries.values()) expect(b.toString("latin1")).not.toContain("PRIVATE KEY");
    const runArtifacts = app.db
      .select()
      .from(checkpoints)
      .where(eq(checkpoints.runId, runId))
      .all()
      .map((c) => `artifacts/${c.sha256.slice(0, 2)}/${c.sha256}`);
    expect(runArtifacts.filter((a) => names.includes(a)).length).toBeGreaterThanOrEqual(2);

    const restored = path.join(tmp, "restored");
    const r = io();
    expect(await restoreCommand(["--from", backupFile, "--data-dir", restored], r.io), r.err.join("")).toBe(0);
    for (const [rel, digest] of Object.entries(manifest.files)) {
      const bytes = fs.readFileSync(path.join(restored, rel));
      expect([sha(bytes), bytes.length], rel).toEqual([digest.sha256, digest.bytes]);
      if (rel.startsWith("artifacts/")) expect(sha(bytes)).toBe(path.basename(rel));
    }
    const db = new Database(path.join(restored, "runledger.sqlite"), { readonly: true });
    expect((db.prepare("SELECT count(*) AS n FROM audit_events").get() as { n: number }).n).toBe(manifest.ledger.events);
    db.close();
    const v = io();
    const code = await auditVerifyCommand(["verify", "--data-dir", restored, "--json"], v.io);
    expect(code, v.out.join("") + v.err.join("")).toBe(0);
    expect((JSON.parse(v.out.join("")) as { ok: boolean }).ok).toBe(true);
  });

  it("refuses a non-empty target, and a tampered archive without leaving anything", async () => {
    const full = path.join(tmp, "not-empty");
    fs.mkdirSync(full);
    fs.writeFileSync(path.join(full, "keep.txt"), "mine");
    const r1 = io();
    expect(await restoreCommand(["--from", backupFile, "--data-dir", full], r1.io)).toBe(1);
    expect(r1.err.join("")).toContain(`${full} is not empty: restore into a new or empty directory`);
    expect(fs.readdirSync(full)).toEqual(["keep.txt"]);

    // Flip one byte inside an artifact's content (not its header): the manifest hash catches it.
    const bytes = fs.readFileSync(backupFile);
    const artifact = Object.keys(manifest.files).find((f) => f.startsWith("artifacts/"))!;
    const at = bytes.indexOf(Buffer.from(`${BACKUP_ROOT}/${artifact}`)) + 512 + 10;
    bytes[at] = bytes[at]! ^ 0xff;
    const tampered = path.join(tmp, "tampered.tar");
    fs.writeFileSync(tampered, bytes);
    const target = path.join(tmp, "from-tampered");
    const r2 = io();
    expect(await restoreCommand(["--from", tampered, "--data-dir", target], r2.io)).toBe(1);
    expect(r2.err.join("")).toMatch(new RegExp(`the backup does not check out; nothing was restored:\\n  ${artifact}: the archive holds`));
    expect(fs.existsSync(target)).toBe(false);

    const u = io();
    expect(await backupCommand(["--data-dir", app.dataDir], u.io)).toBe(2);
    expect(u.err.join("")).toContain("backup needs --out FILE");
  });
});
