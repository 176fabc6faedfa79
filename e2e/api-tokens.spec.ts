/**
 * Issue 15, phase 1, in the real app: an engineer creates a personal access token on their account page (shown once),
 * a "script" logs a run through the MLflow-compatible API of the production build with it (Bearer), the run page
 * shows its curves and its param as a decision with the rationale tag, and after revoking the token the API answers
 * 401 UNAUTHENTICATED.
 */
import { expect, test } from "@playwright/test";
import { signIn, unique } from "./helpers";

test("a token from the account page logs a run through /api/2.0/mlflow/ that the run page shows; revoked, it is refused", async ({
  page,
}) => {
  await signIn(page, "engineer");
  await page.goto("/account");
  const tokens = page.getByRole("region", { name: "Access tokens" });
  const name = unique("e2e script");
  await tokens.getByLabel("Token name").fill(name);
  await tokens.getByRole("button", { name: "Create token" }).click();
  const shown = tokens.getByLabel("New token");
  await expect(shown).toHaveText(/^rlt_/);
  const token = (await shown.textContent())!.trim();
  await expect(tokens.getByRole("row", { name: new RegExp(name) })).toContainText("active");

  const api = async (path: string, data: unknown, bearer = token) => {
    const res = await page.request.post(`/api/2.0/mlflow/${path}`, {
      data: data as object,
      headers: { authorization: `Bearer ${bearer}`, "content-type": "application/json" },
    });
    return { status: res.status(), json: (await res.json()) as Record<string, unknown> };
  };
  const exp = await api("experiments/create", { name: unique("e2e-mlflow") });
  expect(exp.status).toBe(200);
  const created = await api("runs/create", {
    experiment_id: exp.json.experiment_id,
    run_name: "from a script",
    tags: [{ key: "runledger.rationale", value: "a larger learning rate converges sooner" }],
  });
  const runId = (created.json.run as { info: { run_id: string } }).info.run_id;
  const logged = await api("runs/log-batch", {
    run_id: runId,
    params: [{ key: "learning_rate", value: "0.05" }],
    metrics: [0, 1, 2, 3].map((step) => ({ key: "train/loss", value: 1 / (step + 1), timestamp: Date.now(), step })),
  });
  expect(logged).toEqual({ status: 200, json: {} });
  expect((await api("runs/update", { run_id: runId, status: "FINISHED", end_time: Date.now() })).status).toBe(200);

  await page.goto(`/runs/${runId}`);
  await expect(page.getByRole("heading", { name: "from a script" })).toBeVisible();
  await expect(page.getByRole("img", { name: "train/loss curve" })).toBeVisible();
  await expect(page.getByText("Param learning_rate")).toBeVisible();
  await expect(page.getByText(/^logged through the MLflow-compatible API ·/)).toBeVisible();
  await expect(page.getByText("“a larger learning rate converges sooner”").first()).toBeVisible();
  await expect(page.getByRole("link", { name: "Fork run" })).toHaveCount(0);

  await page.goto("/account");
  await tokens.getByRole("button", { name: `Revoke token ${name}` }).click();
  await expect(tokens.getByRole("row", { name: new RegExp(name) })).toContainText("revoked");
  const refused = await api("experiments/search", {});
  expect(refused.status).toBe(401);
  expect(refused.json.error_code).toBe("UNAUTHENTICATED");
});
