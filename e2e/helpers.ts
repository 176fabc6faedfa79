/** Shared browser-test helpers: sign in as a demo role (the demo users are seeded at server start; see README). */
import { expect, type Page } from "@playwright/test";
import net from "node:net";

export const DEMO = {
  admin: { email: "admin@runledger.local", password: "admin-demo-pass", name: "Ada Admin" },
  engineer: { email: "engineer@runledger.local", password: "engineer-demo-pass", name: "Erin Engineer" },
  reviewer: { email: "reviewer@runledger.local", password: "reviewer-demo-pass", name: "Rui Reviewer" },
  auditor: { email: "auditor@runledger.local", password: "auditor-demo-pass", name: "Alex Auditor" },
  reviewer2: { email: "reviewer2@runledger.local", password: "reviewer2-demo-pass", name: "Rita Second-Reviewer" },
} as const;

export async function signIn(page: Page, who: keyof typeof DEMO) {
  await page.goto("/signin");
  await page.getByLabel("Email").fill(DEMO[who].email);
  await page.getByLabel("Password").fill(DEMO[who].password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByText(DEMO[who].name)).toBeVisible();
}

/** A name no other test (or earlier run of this test) uses. */
export function unique(prefix: string) {
  return `${prefix} ${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;
}

/** Calls a tRPC procedure over HTTP with the page's session cookie (to prove the server, not only the UI, enforces rules). */
export async function trpcCall(page: Page, kind: "query" | "mutation", path: string, input: unknown) {
  if (kind === "mutation") return page.request.post(`/api/trpc/${path}`, { data: input as object });
  return page.request.get(`/api/trpc/${path}?input=${encodeURIComponent(JSON.stringify(input))}`);
}

/** A tRPC query over HTTP that must succeed (200): its data. */
export async function trpcQuery<T>(page: Page, path: string, input?: unknown): Promise<T> {
  const res = await trpcCall(page, "query", path, input ?? {});
  expect(res.status(), `${path}: ${await res.text()}`).toBe(200);
  return ((await res.json()) as { result: { data: T } }).result.data;
}

/** A tRPC mutation over HTTP that must succeed (200): its data. */
export async function trpcMutate<T>(page: Page, path: string, input: unknown): Promise<T> {
  const res = await trpcCall(page, "mutation", path, input);
  expect(res.status(), `${path}: ${await res.text()}`).toBe(200);
  return ((await res.json()) as { result: { data: T } }).result.data;
}

/** A small Iris config that trains in seconds (3 epochs); `name` goes into the config when given. */
export const irisConfig = (learningRate: number, name?: string) => ({
  ...(name ? { name } : {}),
  data: {
    dataset: { builtin: "iris" },
    normalization: "standard",
    split: { strategy: "stratified", train: 0.7, validation: 0.15, test: 0.15, seed: 5 },
  },
  model: { layers: [{ type: "dense", units: 8, activation: "relu" }] },
  training: { optimizer: { name: "adam" }, learningRate, batchSize: 16, epochs: 3, seed: 2 },
});

/** Uploads a CSV through the Datasets page's form and returns the new dataset's id. */
export async function uploadCsvDataset(page: Page, name: string, csv: string): Promise<number> {
  await page.goto("/datasets");
  const form = page.getByRole("form", { name: "Upload a CSV dataset" });
  await form.getByLabel("CSV file").setInputFiles({ name: `${name}.csv`, mimeType: "text/csv", buffer: Buffer.from(csv) });
  await form.getByLabel("Dataset name").fill(name);
  await form.getByRole("button", { name: "Upload" }).click();
  await expect(form.getByRole("status")).toContainText(`Uploaded “${name}”`);
  return (await trpcQuery<{ id: number; name: string }[]>(page, "datasets.list")).find((d) => d.name === name)!.id;
}

/**
 * A run that passes every launch check but fails at its first batch, recording no metric: a regression on targets
 * near float32's limit (a fresh upload each time), whose first batch's squared error is already Infinity, so the
 * trainer stops ("training diverged: batch_loss became Infinity at epoch 1, batch 1"). Returns the config to launch.
 */
export async function firstBatchDivergingConfig(page: Page, learningRate = 0.01) {
  const rows = Array.from({ length: 30 }, (_, i) => `${i},${(i * 7) % 5},${(i + 1) * 1e30}`);
  const datasetId = await uploadCsvDataset(
    page,
    unique("overflowing targets"),
    `x0,x1,target\n${rows.join("\n")}\n${Date.now() % 997},0,1e30\n`,
  );
  return {
    data: {
      dataset: { datasetId: String(datasetId) },
      task: "regression",
      normalization: "none",
      split: { strategy: "random", train: 0.6, validation: 0.2, test: 0.2, seed: 2 },
    },
    model: { layers: [{ type: "dense", units: 4, activation: "relu" }] },
    training: { optimizer: { name: "adam" }, learningRate, batchSize: 8, epochs: 2, seed: 1 },
  };
}

/** Creates an experiment in the demo project through the UI and opens it. */
export async function createExperiment(page: Page, name: string) {
  await page.goto("/");
  const project = page.getByRole("region", { name: /Project Demo: flower classifier/ });
  await project.getByLabel("New experiment name").fill(name);
  await project.getByRole("button", { name: "Create experiment" }).click();
  await project.getByRole("link", { name }).click();
  await expect(page.getByRole("heading", { name })).toBeVisible();
}

/** Cancels the run whose page is open, as an engineer does: Cancel run, the reason, then the form's Cancel run. */
export async function cancelRunOnPage(page: Page, reason: string) {
  await page.getByRole("region", { name: "Run header" }).getByRole("button", { name: "Cancel run" }).click();
  const form = page.getByRole("form", { name: /^Cancel run #\d+$/ });
  await form.getByRole("textbox", { name: "Why cancel this run" }).fill(reason);
  await form.getByRole("button", { name: "Cancel run" }).click();
}

/** A loopback TCP port that was free a moment ago (for a second server a test starts itself). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

/** Creates a personal access token named `name` on the signed-in user's account page and returns it (shown once). */
export async function createTokenOnAccountPage(page: Page, name: string): Promise<string> {
  await page.goto("/account");
  const tokens = page.getByRole("region", { name: "Access tokens" });
  await tokens.getByLabel("Token name").fill(unique(name));
  await tokens.getByRole("button", { name: "Create token" }).click();
  const shown = tokens.getByLabel("New token");
  await expect(shown).toHaveText(/^rlt_/);
  return (await shown.textContent())!.trim();
}
