/**
 * The Audit page of a SQLite server whose key directory lacks the key the ledger names (a rotation made with another
 * key directory while it runs): the page shows what is wrong (signingKeyProblem) in the server key panel, with the
 * latest checkpoint still judged valid, instead of "Could not load the ledger's status". Runs a `next start` of its own
 * (fresh data and key directories), as witness-boot.spec.ts does, so the shared server's key is never touched.
 */
import { test, expect } from "@playwright/test";
import { execFileSync, spawn } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { DEMO, freePort } from "./helpers";

test("[AUDIT-KEY-MISSING]: the Audit page says the server lacks the ledger's signing key", async ({ page }) => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-e2e-keymissing-"));
  const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-e2e-keymissing-keys-"));
  const otherKeyDir = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-e2e-keymissing-other-"));
  const env: NodeJS.ProcessEnv = { ...process.env, RUNLEDGER_DATA_DIR: dataDir, RUNLEDGER_KEY_DIR: keyDir };
  delete env.RUNLEDGER_WITNESSES;
  delete env.DATABASE_URL;
  const cli = (...args: string[]) => execFileSync("npx", ["tsx", "server/cli/main.ts", ...args], { env, encoding: "utf8" });
  cli("seed", "--no-demo-run");
  cli("audit", "checkpoint-export", "--new", "--out", path.join(dataDir, "trusted-checkpoint.json"));

  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const log = path.join(dataDir, "next-start.log");
  const fd = fs.openSync(log, "w");
  const server = spawn("npx", ["next", "start", "-p", String(port), "-H", "127.0.0.1"], {
    env: { ...env, PORT: String(port) },
    stdio: ["ignore", fd, fd],
    detached: true,
  });
  fs.closeSync(fd);
  let passed = false;
  try {
    await expect
      .poll(async () => (await fetch(`${base}/signin`).catch(() => null))?.status ?? 0, { timeout: 60_000, intervals: [250] })
      .toBe(200);
    // The rotation, made with a copy of the key directory: the new key lands only there, the running server lacks it.
    for (const f of fs.readdirSync(keyDir)) fs.copyFileSync(path.join(keyDir, f), path.join(otherKeyDir, f));
    const rotation = JSON.parse(cli("audit", "rotate-key", "--key-dir", otherKeyDir, "--json")) as { newFingerprint: string };

    await page.goto(`${base}/signin`);
    await page.getByLabel("Email").fill(DEMO.auditor.email);
    await page.getByLabel("Password").fill(DEMO.auditor.password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect(page.getByText(DEMO.auditor.name)).toBeVisible();
    await page.goto(`${base}/audit`);
    const problem = page.getByTestId("signing-key-problem");
    await expect(problem).toContainText("This server cannot sign checkpoints");
    await expect(problem).toContainText(`This server does not hold the ledger's signing key ${rotation.newFingerprint}`);
    await expect(problem).toContainText("checkpoints cannot be signed until it does");
    await expect(page.getByRole("region", { name: "Server key" })).toContainText("signature valid");
    await expect(page.getByText("Could not load the ledger's status")).toHaveCount(0);
    // The key an auditor needs for the newest checkpoints: the one the rotation introduced (its public part is in the ledger).
    await expect(problem).toContainText(`The ledger's key in force is ${rotation.newFingerprint}`);
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      problem.getByRole("button", { name: "Download the key in force" }).click(),
    ]);
    const pem = fs.readFileSync((await download.path())!, "utf8");
    const newKeyFile = path.join(otherKeyDir, `ed25519-${rotation.newFingerprint.replace(/^SHA256:/, "")}.key`); // keys.ts keyFileName
    expect(pem).toContain("BEGIN PUBLIC KEY");
    expect(crypto.createPublicKey(fs.readFileSync(newKeyFile)).export({ type: "spki", format: "pem" })).toBe(pem);
    await expect(page.getByRole("button", { name: "Download this server's key" })).toBeVisible();
    passed = true;
  } finally {
    if (server.pid) {
      try {
        process.kill(-server.pid, "SIGTERM");
      } catch {
        // already gone
      }
    }
    if (!passed) console.log(`next start log:\n${fs.readFileSync(log, "utf8")}`);
    if (passed) for (const d of [dataDir, keyDir, otherKeyDir]) fs.rmSync(d, { recursive: true, force: true });
  }
});
