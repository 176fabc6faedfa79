/**
 * The witness pusher starts with the production server (instrumentation.ts register()), not on its first request:
 * a `next start` of this spec's own (fresh data and key directories, a witness of its own on loopback) is given a
 * checkpoint signed before it starts (`seed`, then `audit checkpoint-export --new`), and the witness cosigns it
 * while NO request is made to the server.
 */
import { test, expect } from "@playwright/test";
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseAuditPublicKey } from "../server/audit/keys";
import { logOrigin } from "../server/audit/witness/checkpoint-note";
import { fetchWitnessCheckpoint } from "../server/audit/witness/client";
import { parseVerifierKey } from "../server/audit/witness/note";
import { startWitnessProcess } from "../server/audit/witness/witness-process";
import { freePort } from "./helpers";

test("[WITNESS-BOOT]: a server that receives no request pushes its latest checkpoint to the witness", async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-e2e-boot-"));
  const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-e2e-boot-keys-"));
  const env: NodeJS.ProcessEnv = { ...process.env, RUNLEDGER_DATA_DIR: dataDir, RUNLEDGER_KEY_DIR: keyDir };
  delete env.RUNLEDGER_WITNESSES;
  delete env.RUNLEDGER_LOG_ORIGIN;
  const cli = (...args: string[]) => execFileSync("npx", ["tsx", "server/cli/main.ts", ...args], { env, encoding: "utf8" });
  cli("seed", "--no-demo-run");
  const exported = JSON.parse(
    cli("audit", "checkpoint-export", "--new", "--out", path.join(dataDir, "trusted-checkpoint.json"), "--json"),
  ) as { treeHead: { treeSize: number; rootHash: string } };
  const treeSize = exported.treeHead.treeSize;
  expect(treeSize).toBeGreaterThan(0);

  const pub = path.join(dataDir, "audit-ed25519.pub");
  const witness = await startWitnessProcess({ logKey: pub, name: "e2e.witness/boot" });
  const port = await freePort();
  const log = path.join(dataDir, "next-start.log");
  const fd = fs.openSync(log, "w");
  const server = spawn("npx", ["next", "start", "-p", String(port), "-H", "127.0.0.1"], {
    env: { ...env, RUNLEDGER_WITNESSES: `${witness.url}=${witness.vkey}`, PORT: String(port) },
    stdio: ["ignore", fd, fd],
    detached: true,
  });
  fs.closeSync(fd);
  const spawnedAt = Date.now();
  let passed = false;
  try {
    const key = parseVerifierKey(witness.vkey);
    const origin = logOrigin(parseAuditPublicKey(fs.readFileSync(pub, "utf8")).fingerprint, {});
    // Only the witness is asked; the server gets no request at all.
    await expect
      .poll(async () => (await fetchWitnessCheckpoint(witness.url, key, origin, { timeoutMs: 2000 }).catch(() => null))?.treeSize ?? 0, {
        timeout: 60_000,
        intervals: [250],
        message: `the witness did not cosign the checkpoint signed before the start; server log: ${log}`,
      })
      .toBe(treeSize);
    const cosigned = await fetchWitnessCheckpoint(witness.url, key, origin);
    expect(cosigned.rootHash).toBe(exported.treeHead.rootHash);
    console.log(
      `witness cosigned tree size ${treeSize} ${Date.now() - spawnedAt} ms after \`next start\` was spawned, with no request to it`,
    );
    expect(fs.readFileSync(log, "utf8")).toMatch(/Ready/);
    passed = true;
  } finally {
    if (server.pid) {
      try {
        process.kill(-server.pid, "SIGTERM");
      } catch {
        // already gone
      }
    }
    await witness.stop();
    if (!passed) console.log(`next start log:\n${fs.readFileSync(log, "utf8")}\nwitness log:\n${witness.output()}`);
    if (passed) for (const d of [dataDir, keyDir, witness.keyDir]) fs.rmSync(d, { recursive: true, force: true });
  }
});
