import { defineConfig, devices } from "@playwright/test";
import path from "node:path";
import os from "node:os";
import fs from "node:fs";
import { execFileSync } from "node:child_process";
import { loadOrCreateWitnessIdentity } from "./server/audit/witness/witness-files";

/**
 * Browser tests drive the real app (production build) on its own fresh data directory, in Debian's Chromium
 * (Playwright cannot download its own browser here). Each test seeds what it needs through the UI or the API.
 */
/**
 * The browser tests' configuration: the app on its own fresh data directory (SQLite), or with `databaseUrl` on
 * PostgreSQL (playwright.pg.config.ts); `testIgnore` leaves out specs.
 */
export function runledgerE2eConfig(opts: { databaseUrl?: string; testIgnore?: string[]; defaultPort?: number } = {}) {
  const PORT = Number(process.env.E2E_PORT ?? opts.defaultPort ?? 3100);
  const dataDir = process.env.E2E_DATA_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), "runledger-e2e-"));
  process.env.E2E_DATA_DIR = dataDir;
  // The server's signing key lives in a key directory of its own, never in the data directory (and never the user's real one).
  const keyDir = process.env.E2E_KEY_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), "runledger-e2e-keys-"));
  process.env.E2E_KEY_DIR = keyDir;
  const chromium = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
  // A witness (C2SP tlog-witness, `witness serve`) on a free loopback port with a key directory of its own; the app
  // pushes every signed checkpoint to it (RUNLEDGER_WITNESSES). Its key is made here so the app can be told its vkey.
  const witnessDir = process.env.E2E_WITNESS_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), "runledger-e2e-witness-"));
  process.env.E2E_WITNESS_DIR = witnessDir;
  const FREE_PORT_JS = "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})";
  const WITNESS_PORT = Number(process.env.E2E_WITNESS_PORT ?? execFileSync(process.execPath, ["-e", FREE_PORT_JS]).toString().trim());
  process.env.E2E_WITNESS_PORT = String(WITNESS_PORT);
  const witnessVkey = loadOrCreateWitnessIdentity(witnessDir, "e2e.witness/w1").identity.verifierKey.vkey;
  const logPublicKey = path.join(dataDir, "audit-ed25519.pub"); // written by the app's first start (seed)
  return defineConfig({
    testDir: "./e2e",
    testIgnore: opts.testIgnore,
    timeout: 120_000,
    expect: { timeout: 30_000 },
    fullyParallel: false,
    workers: 1,
    forbidOnly: !!process.env.CI,
    retries: process.env.CI ? 1 : 0,
    reporter: [["list"]],
    use: {
      baseURL: `http://127.0.0.1:${PORT}`,
      trace: "retain-on-failure",
      screenshot: "only-on-failure",
      launchOptions: {
        executablePath: chromium,
        args: [
          "--no-sandbox",
          "--disable-gpu",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
          "--no-first-run",
          "--disable-quic",
        ],
      },
    },
    projects: [{ name: "chromium", use: { ...devices["Desktop Chrome"] } }],
    webServer: [
      {
        // `next build` runs in the test script before Playwright; here the server seeds its data dir and starts.
        command: `npm run serve -- -p ${PORT} -H 127.0.0.1`,
        url: `http://127.0.0.1:${PORT}/signin`,
        timeout: 180_000,
        reuseExistingServer: false,
        // RUNLEDGER_TRUST_PROXY=1: the tests play the reverse proxy, so each spec's own X-Forwarded-For address keeps its
        // throttling counts apart (e2e/auth-followups.spec.ts checks the default, untrusted mode on a server of its own).
        env: {
          RUNLEDGER_DATA_DIR: dataDir,
          RUNLEDGER_KEY_DIR: keyDir,
          PORT: String(PORT),
          RUNLEDGER_TRUST_PROXY: "1",
          RUNLEDGER_WITNESSES: `http://127.0.0.1:${WITNESS_PORT}=${witnessVkey}`,
          ...(opts.databaseUrl ? { DATABASE_URL: opts.databaseUrl } : {}),
        },
        stdout: "pipe",
        stderr: "pipe",
      },
      {
        // The witness needs the log's public key, which the app writes on its first start: wait for it.
        command: `sh -c 'until [ -f "${logPublicKey}" ]; do sleep 0.2; done; exec npx tsx server/cli/main.ts witness serve --port ${WITNESS_PORT} --host 127.0.0.1 --key-dir "${witnessDir}" --log-key "${logPublicKey}"'`,
        url: `http://127.0.0.1:${WITNESS_PORT}/witness-key`,
        timeout: 180_000,
        reuseExistingServer: false,
        stdout: "pipe",
        stderr: "pipe",
      },
    ],
  });
}

export default runledgerE2eConfig();
