import { defineConfig, devices } from "@playwright/test";
import path from "node:path";
import os from "node:os";
import fs from "node:fs";

/**
 * Browser tests drive the real app (production build) on its own fresh data directory, in Debian's Chromium
 * (Playwright cannot download its own browser here). Each test seeds what it needs through the UI or the API.
 */
const PORT = Number(process.env.E2E_PORT ?? 3100);
const dataDir = process.env.E2E_DATA_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), "runledger-e2e-"));
process.env.E2E_DATA_DIR = dataDir;
// The server's signing key lives in a key directory of its own, never in the data directory (and never the user's real one).
const keyDir = process.env.E2E_KEY_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), "runledger-e2e-keys-"));
process.env.E2E_KEY_DIR = keyDir;
const chromium = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

export default defineConfig({
  testDir: "./e2e",
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
      args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
    },
  },
  projects: [{ name: "chromium", use: { ...devices["Desktop Chrome"] } }],
  webServer: {
    // `next build` runs in the test script before Playwright; here the server seeds its data dir and starts.
    command: `npm run serve -- -p ${PORT} -H 127.0.0.1`,
    url: `http://127.0.0.1:${PORT}/signin`,
    timeout: 180_000,
    reuseExistingServer: false,
    env: { RUNLEDGER_DATA_DIR: dataDir, RUNLEDGER_KEY_DIR: keyDir, PORT: String(PORT) },
    stdout: "pipe",
    stderr: "pipe",
  },
});
