/**
 * The run page says which training worker holds a run (issue 16): a worker process (`npm run worker`) on the app's
 * data directory trains a run queued with `cli train --enqueue`; the page shows "training worker on HOST · pid N";
 * after the worker's SIGTERM the run waits in the workers' queue (the app trains in-process and leaves it there), and
 * Cancel run takes it out and ends it. Waits on the page, no fixed sleeps.
 */
import { expect, test } from "@playwright/test";
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { cancelRunOnPage, signIn } from "./helpers";

const dataDir = process.env.E2E_DATA_DIR!;
const keyDir = process.env.E2E_KEY_DIR!;

function start(args: string[]): { child: ChildProcess; exited: Promise<number | null>; stderr: () => string } {
  const env = { ...process.env };
  delete env.RUNLEDGER_TRAINING;
  const child = spawn(process.execPath, ["--import", "tsx", ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  child.stdout!.resume();
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, exited, stderr: () => err };
}

test("the run page names the training worker that holds a run, then the queue it went back to", async ({ page }) => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-e2e-workers-"));
  const config = path.join(tmp, "long.json");
  fs.writeFileSync(
    config,
    JSON.stringify({
      data: {
        dataset: { builtin: "iris" },
        normalization: "standard",
        split: { strategy: "stratified", train: 0.7, validation: 0.15, test: 0.15, seed: 3 },
      },
      model: { layers: [{ type: "dense", units: 12, activation: "relu" }] },
      training: { optimizer: { name: "adam" }, learningRate: 0.03, batchSize: 4, epochs: 400, seed: 1, checkpointEvery: 1 },
    }),
  );
  const worker = start(["server/worker/main.ts", "--data-dir", dataDir, "--key-dir", keyDir, "--backend", "cpu"]);
  const train = start([
    "server/cli/main.ts",
    "train",
    "--config",
    config,
    "--data-dir",
    dataDir,
    "--key-dir",
    keyDir,
    "--enqueue",
    "--json",
  ]);
  try {
    await expect.poll(() => /run (\d+) \(/.exec(train.stderr())?.[1], { timeout: 60_000 }).toBeTruthy();
    const runId = Number(/run (\d+) \(/.exec(train.stderr())![1]);
    await signIn(page, "engineer");
    await page.goto(`/runs/${runId}`);
    const summary = page.getByRole("region", { name: "Summary" });
    await expect(summary.getByText(`training worker on ${os.hostname()} · pid ${worker.child.pid}`)).toBeVisible({ timeout: 90_000 });

    // SIGTERM: the worker hands the run back and exits 0; the page shows it waiting in the queue.
    worker.child.kill("SIGTERM");
    expect(await worker.exited).toBe(0);
    await expect(summary.getByText(/waiting in the training workers’ queue since/)).toBeVisible();

    // Cancel run takes it out of the queue and ends it; `train --enqueue` then reports the cancelled run.
    await cancelRunOnPage(page, "e2e: no worker will take it");
    await expect(summary.getByText("cancelled", { exact: true })).toBeVisible();
    await expect(summary.getByText("Trained by")).toHaveCount(0);
    expect(await train.exited).toBe(1);
  } finally {
    for (const c of [worker, train]) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill("SIGKILL");
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
