/**
 * Issue 15, phase 2, in the real app: a script logs a run through the tracking API of the production build (token from
 * the account page), uploads its weights file through MLflow's artifact proxy, ends the run and registers the file as
 * a model version with staging; the model page lists the version from that run with the file's sha256 and the alias,
 * and says it cannot be promoted without a test evaluation (no Request production); the version's lineage view shows
 * the run with the dataset input the script declared. "production" through the API is refused with PERMISSION_DENIED
 * naming the promotion flow.
 */
import { createHash } from "node:crypto";
import { expect, test } from "@playwright/test";
import { createTokenOnAccountPage, signIn, unique } from "./helpers";

test("a run logged through the API registers its uploaded weights as a model version the model page shows", async ({ page }) => {
  await signIn(page, "engineer");
  const auth = { authorization: `Bearer ${await createTokenOnAccountPage(page, "e2e registry")}` };

  const api = async (method: "POST" | "GET", path: string, data?: unknown) => {
    const res =
      method === "GET"
        ? await page.request.get(`/api/2.0/mlflow/${path}`, { headers: auth })
        : await page.request.post(`/api/2.0/mlflow/${path}`, {
            data: data as object,
            headers: { ...auth, "content-type": "application/json" },
          });
    return { status: res.status(), json: (await res.json()) as Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any
  };
  const exp = await api("POST", "experiments/create", { name: unique("e2e-registry") });
  const run = (await api("POST", "runs/create", { experiment_id: exp.json.experiment_id, run_name: "weights from a script" })).json.run;
  const runId: string = run.info.run_id;
  await api("POST", "runs/log-batch", {
    run_id: runId,
    params: [{ key: "lr", value: "0.01" }],
    metrics: [1, 2].map((step) => ({ key: "train/loss", value: 1 / step, timestamp: Date.now(), step })),
  });
  const inputs = await api("POST", "runs/log-inputs", {
    run_id: runId,
    datasets: [
      {
        dataset: { name: "iris-from-script", digest: "e2ed1g", source_type: "local", source: '{"uri": "/data/iris.csv"}' },
        tags: [{ key: "mlflow.data.context", value: "training" }],
      },
    ],
  });
  expect(inputs.status).toBe(200);
  const weights = Buffer.from(Array.from({ length: 2048 }, (_, i) => (i * 7) % 256));
  const sha = createHash("sha256").update(weights).digest("hex");
  const root = String(run.info.artifact_uri).replace("mlflow-artifacts:/", "");
  const put = await page.request.put(`/api/2.0/mlflow-artifacts/artifacts/${root}/model/weights.bin`, { data: weights, headers: auth });
  expect(put.status()).toBe(200);
  expect((await api("POST", "runs/update", { run_id: runId, status: "FINISHED", end_time: Date.now() })).status).toBe(200);

  const model = unique("e2e-api-model").replace(/[^A-Za-z0-9._-]/g, "-");
  expect((await api("POST", "registered-models/create", { name: model })).status).toBe(200);
  const version = await api("POST", "model-versions/create", { name: model, source: `runs:/${runId}/model/weights.bin`, run_id: runId });
  expect(version.json.model_version).toMatchObject({ version: "1", run_id: runId, status: "READY" });
  expect((await api("POST", "registered-models/alias", { name: model, alias: "staging", version: "1" })).status).toBe(200);
  const production = await api("POST", "registered-models/alias", { name: model, alias: "production", version: "1" });
  expect(production.status).toBe(403);
  expect(production.json.error_code).toBe("PERMISSION_DENIED");
  expect(production.json.message).toMatch(/promotion request/);

  await page.goto(`/models/${encodeURIComponent(model)}`);
  const versions = page.getByRole("table", { name: "Model versions" });
  const row = versions.getByRole("row").filter({ hasText: `run #${runId}` });
  await expect(row).toHaveCount(1);
  await expect(row).toContainText("v1");
  await expect(row).toContainText("staging");
  await expect(row).toContainText("No test evaluation: this version cannot be promoted");
  await expect(row.getByRole("button", { name: "Request production" })).toHaveCount(0);
  await expect(page.getByText(sha.slice(0, 12)).first()).toBeVisible();

  await page.goto(`/models/${encodeURIComponent(model)}/versions/1`);
  const graph = page.getByRole("region", { name: "Lineage graph" });
  await expect(graph.getByRole("button", { name: `Training run: Run #${runId}: weights from a script` })).toBeVisible();
  await expect(graph.getByRole("button", { name: "Dataset input (declared by a script): iris-from-script" })).toBeVisible();
});
