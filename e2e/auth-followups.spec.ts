/**
 * Issue 11 follow-ups against the real production build:
 * - A reviewer who wrote a model-card section version is not offered its review (the option is disabled, with the
 *   reason); another reviewer is. A section signature shows its signed record's hash short with a copy button.
 * - With RUNLEDGER_TRUST_PROXY unset (the default), a client cannot dodge the per-address sign-in limit by sending
 *   its own X-Forwarded-For: checked on a second `next start` server of this spec's own (fresh data and key
 *   directories, no demo data), since the shared e2e server plays "behind one proxy" (playwright.config.ts).
 */
import { test, expect, type APIRequestContext } from "@playwright/test";
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { DEMO, freePort, signIn, unique } from "./helpers";

const post = (request: APIRequestContext, proc: string, input: unknown, headers: Record<string, string> = {}) =>
  request.post(`/api/trpc/${proc}`, { data: input as object, headers });

test("[AUTH+]: the author of a model-card version is not offered its review; another reviewer is", async ({ page, browser }) => {
  await signIn(page, "engineer");
  const experiments = await (await page.request.get("/api/trpc/projects.list")).json();
  const experimentId = (experiments.result.data as { experiments: { id: number }[] }[]).flatMap((p) => p.experiments)[0]!.id;
  const config = {
    data: {
      dataset: { builtin: "iris" },
      normalization: "standard",
      split: { strategy: "stratified", train: 0.7, validation: 0.15, test: 0.15, seed: 4 },
    },
    model: { layers: [{ type: "dense", units: 4, activation: "relu" }] },
    training: { optimizer: { name: "adam" }, learningRate: 0.03, batchSize: 16, epochs: 1, seed: 5 },
  };
  const run = (
    await (await post(page.request, "runs.create", { experimentId, config, rationale: "e2e: separation of duties in the UI" })).json()
  ).result.data as { id: number };
  await expect
    .poll(
      async () =>
        (await (await page.request.get(`/api/trpc/runs.get?input=${encodeURIComponent(JSON.stringify({ id: run.id }))}`)).json()).result
          .data.status,
      { timeout: 90_000 },
    )
    .toBe("completed");
  const model = unique("e2e-card").replace(/\s+/g, "-");
  const version = (await (await post(page.request, "models.register", { runId: run.id, modelName: model })).json()).result.data as {
    modelVersionId: number;
  };

  const rui = await (await browser.newContext()).newPage();
  await signIn(rui, "reviewer");
  await rui.goto(`/report/${version.modelVersionId}`);
  const card = rui.getByRole("region", { name: "Model card" });
  const section = card.getByRole("article", { name: "Section Intended purpose and use" });
  await section.getByRole("button", { name: "Write intended purpose and use" }).click();
  await section.getByLabel("Intended purpose and use text").fill("Teaching use only, written by Rui.");
  await section.getByRole("button", { name: "Save new version" }).click();
  const ruiSign = section.getByRole("form", { name: "Sign Intended purpose and use" });
  const ruiMeaning = ruiSign.getByLabel("Meaning of the signature on Intended purpose and use");
  await expect(ruiMeaning).toHaveValue("authorship");
  await expect(ruiMeaning.getByRole("option", { name: "review (not by its author)" })).toBeDisabled();
  await expect(ruiSign.getByRole("note")).toHaveText("You wrote v1, so you cannot sign its review: another reviewer must review it.");
  // Authorship stays available to the author.
  await ruiSign.getByLabel("Password to sign Intended purpose and use").fill(DEMO.reviewer.password);
  await ruiSign.getByRole("button", { name: "Sign" }).click();
  const ruiSignature = section.getByRole("list", { name: "Signatures of Intended purpose and use" }).getByRole("listitem");
  await expect(ruiSignature).toContainText("Authored by Rui Reviewer");
  // The signed record's hash reads once, short (12 hex) with a copy button, as elsewhere in the app, not as plain text.
  await expect(ruiSignature.getByRole("button", { name: "Copy signed record sha256" })).toBeVisible();
  const signedHash = ruiSignature.getByTitle(/^[0-9a-f]{64}$/);
  await expect(signedHash).toHaveText(/^[0-9a-f]{12}…$/);
  const fullHash = (await signedHash.getAttribute("title")) ?? "";
  expect(fullHash).toMatch(/^[0-9a-f]{64}$/);
  const signatureText = (await ruiSignature.textContent()) ?? "";
  expect(signatureText.split(fullHash.slice(0, 12)).length - 1, signatureText).toBe(1);

  const rita = await (await browser.newContext()).newPage();
  await signIn(rita, "reviewer2");
  await rita.goto(`/report/${version.modelVersionId}`);
  const ritaSign = rita.getByRole("region", { name: "Model card" }).getByRole("form", { name: "Sign Intended purpose and use" });
  const ritaMeaning = ritaSign.getByLabel("Meaning of the signature on Intended purpose and use");
  await expect(ritaMeaning).toHaveValue("review");
  await expect(ritaMeaning.getByRole("option", { name: "review", exact: true })).toBeEnabled();
  await expect(ritaSign.getByRole("note")).toHaveCount(0);
  await ritaSign.getByLabel("Password to sign Intended purpose and use").fill(DEMO.reviewer2.password);
  await ritaSign.getByRole("button", { name: "Sign" }).click();
  await expect(
    rita.getByRole("region", { name: "Model card" }).getByRole("list", { name: "Signatures of Intended purpose and use" }),
  ).toContainText("Reviewed by Rita Second-Reviewer");
});

/** A second production server in the default (untrusted proxy) mode, on a free port, with its own directories. */
async function startDefaultModeServer(): Promise<{ url: string; child: ChildProcess; dirs: string[] }> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-e2e-untrusted-"));
  const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-e2e-untrusted-keys-"));
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    RUNLEDGER_DATA_DIR: dataDir,
    RUNLEDGER_KEY_DIR: keyDir,
    RUNLEDGER_DEMO: "0",
    PORT: String(port),
  };
  delete env.RUNLEDGER_TRUST_PROXY;
  delete env.RUNLEDGER_WITNESSES;
  const log = path.join(dataDir, "serve.log");
  const fd = fs.openSync(log, "w");
  const child = spawn("npm", ["run", "serve", "--", "-p", String(port), "-H", "127.0.0.1"], {
    env,
    stdio: ["ignore", fd, fd],
    detached: true,
  });
  fs.closeSync(fd);
  const url = `http://127.0.0.1:${port}`;
  await expect
    .poll(
      async () =>
        fetch(`${url}/signin`).then(
          (r) => r.status,
          () => 0,
        ),
      { timeout: 120_000, intervals: [250], message: `the second server did not start: ${log}` },
    )
    .toBe(200);
  return { url, child, dirs: [dataDir, keyDir] };
}

test("[AUTH+]: by default a client-sent X-Forwarded-For does not dodge the per-address sign-in limit", async ({ playwright }) => {
  const server = await startDefaultModeServer();
  try {
    const request = await playwright.request.newContext({ baseURL: server.url });
    const stamp = Date.now();
    const statuses: number[] = [];
    let retryAfter: string | undefined;
    // 10 failures per address are free (ADDRESS_POLICY); every attempt claims another address and another account.
    for (let i = 0; i < 11; i++) {
      const res = await post(
        request,
        "auth.signIn",
        { email: `rotate-${stamp}-${i}@example.org`, password: "wrong" },
        { "x-forwarded-for": `203.0.113.${i + 1}` },
      );
      statuses.push(res.status());
      if (res.status() === 429) retryAfter = res.headers()["retry-after"];
    }
    expect(statuses.slice(0, 10)).toEqual(Array(10).fill(401));
    expect(statuses[10]).toBe(429);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    await request.dispose();
  } finally {
    if (server.child.pid) process.kill(-server.child.pid, "SIGTERM");
    if (test.info().status === test.info().expectedStatus) for (const d of server.dirs) fs.rmSync(d, { recursive: true, force: true });
  }
});
