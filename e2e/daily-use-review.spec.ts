/**
 * Issue 14, the reviewer's side of daily use, in Chromium: the review inbox (count in the navigation and on the home
 * page, the inbox page linking to each request), approvals (who signed, no form for a reviewer who already signed, the
 * rule at request time), the home page's counts against the database, and "production at time T".
 *
 * Each test seeds its own data through the API with the page's session (a fresh experiment, a small Iris run, a model
 * of a unique name) and waits on the server's answers, never on fixed sleeps.
 */
import path from "node:path";
import Database from "better-sqlite3";
import { test, expect, type Locator, type Page } from "@playwright/test";
import { DEMO, signIn, unique, trpcQuery as query, trpcMutate as mutate } from "./helpers";

type Json = Record<string, unknown>;

/** A fresh experiment in the demo project (engineer's session). */
async function seedExperiment(page: Page): Promise<number> {
  const projects = await query<{ id: number; name: string }[]>(page, "projects.list");
  const project = projects.find((p) => p.name.startsWith("Demo"))!;
  return (await mutate<{ id: number }>(page, "projects.createExperiment", { projectId: project.id, name: unique("e2e review") })).id;
}

/** Launches a small Iris run through the API and waits until the server reports it completed. */
async function seedRun(page: Page, experimentId: number, seed = 2): Promise<number> {
  const config = {
    data: {
      dataset: { builtin: "iris" },
      normalization: "standard",
      split: { strategy: "stratified", train: 0.7, validation: 0.15, test: 0.15, seed: 5 },
    },
    model: { layers: [{ type: "dense", units: 8, activation: "relu" }] },
    training: { optimizer: { name: "adam" }, learningRate: 0.03, batchSize: 16, epochs: 3, seed },
  };
  const { id } = await mutate<{ id: number }>(page, "runs.create", { experimentId, config, rationale: "e2e: review candidate" });
  await expect.poll(async () => (await query<{ status: string }>(page, "runs.get", { id })).status, { timeout: 90_000 }).toBe("completed");
  return id;
}

/** Registers the run's best checkpoint under `model` and requests production for it; returns the request id. */
async function seedRequest(page: Page, model: string, runId: number): Promise<number> {
  const v = await mutate<{ version: number }>(page, "models.register", { runId, modelName: model });
  const req = await mutate<{ id: number }>(page, "models.requestPromotion", {
    modelName: model,
    version: v.version,
    acknowledgeMissingDocumentation: true,
    rationale: `e2e: promote v${v.version}`,
  });
  return req.id;
}

async function switchUser(page: Page, who: keyof typeof DEMO) {
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/signin/);
  await signIn(page, who);
}

const modelName = () => unique("e2e-review").replace(/\s+/g, "-");

test("[REVIEW inbox]: a reviewer sees the requests waiting for them in the navigation, on the home page and in the inbox, and opens one", async ({
  page,
}) => {
  const model = modelName();
  await signIn(page, "engineer");
  const requestId = await seedRequest(page, model, await seedRun(page, await seedExperiment(page)));
  // Engineers sign nothing: no inbox in their navigation.
  await expect(page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: /^Inbox/ })).toHaveCount(0);

  await switchUser(page, "reviewer");
  const { count } = await query<{ count: number; requests: Json[] }>(page, "models.inbox");
  expect(count).toBeGreaterThanOrEqual(1);
  const waiting = `Inbox: ${count} request${count === 1 ? "" : "s"} waiting for your review`;
  const navLink = page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: waiting });
  await expect(navLink).toBeVisible();
  await expect(navLink.getByTestId("inbox-count")).toHaveText(String(count));
  const panel = page.getByRole("region", { name: "Review inbox" });
  await expect(panel.getByLabel(waiting)).toHaveText(String(count));
  await expect(panel).toContainText(`${count} promotion request${count === 1 ? "" : "s"} wait`);

  // The Models list marks the model with the request waiting for this reviewer.
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Models", exact: true }).click();
  const modelRow = page
    .getByRole("table", { name: "Models" })
    .getByRole("row")
    .filter({ has: page.getByRole("link", { name: model, exact: true }) });
  await expect(modelRow.getByRole("link", { name: "1 waiting for your review" })).toBeVisible();

  await navLink.click();
  await expect(page.getByRole("heading", { name: "Review inbox" })).toBeVisible();
  const table = page.getByRole("table", { name: "Requests waiting for your review" });
  await expect(table.getByRole("row")).toHaveCount(count + 1);
  const linkName = `#${requestId}: ${model} v1 → production`;
  const row = table.getByRole("row").filter({ has: page.getByRole("link", { name: linkName }) });
  const link = row.getByRole("link", { name: linkName });
  await expect(row).toContainText("Erin Engineer");
  await expect(row).toContainText("0 of 1");
  await link.click();
  await expect(page).toHaveURL(new RegExp(`/models/${model}#request-${requestId}$`));
  const card = page.getByRole("article", { name: `Promotion request #${requestId}` });
  await expect(card).toBeInViewport();
  await expect(card.getByRole("form", { name: `Sign promotion request #${requestId}` })).toBeVisible();

  // Signing it empties this reviewer's inbox of it: the count in the navigation follows without a reload.
  await card.getByLabel("Password to sign").fill(DEMO.reviewer.password);
  await card.getByRole("button", { name: "Approve" }).click();
  await expect(card).toHaveAttribute("data-status", "approved");
  const after = count - 1;
  await expect(
    page
      .getByRole("navigation", { name: "Main" })
      .getByRole("link", { name: after === 0 ? "Inbox: nothing waiting for your review" : new RegExp(`^Inbox: ${after} request`) }),
  ).toBeVisible();
});

test("[REVIEW approvals]: a reviewer who signed sees their signature and no form; an old request is read by the rule at request time", async ({
  page,
}) => {
  const model = modelName();
  await signIn(page, "engineer");
  const experimentId = await seedExperiment(page);
  const [runA, runB] = [await seedRun(page, experimentId, 2), await seedRun(page, experimentId, 3)];
  const oldRequest = await seedRequest(page, model, runA);
  const newRequest = await seedRequest(page, model, runB);

  // Under the one-approval rule, a reviewer approves the first request.
  await switchUser(page, "reviewer");
  await page.goto(`/models/${encodeURIComponent(model)}`);
  const old = page.getByRole("article", { name: `Promotion request #${oldRequest}` });
  await old.getByLabel("Password to sign").fill(DEMO.reviewer.password);
  await old.getByRole("button", { name: "Approve" }).click();
  await expect(old).toHaveAttribute("data-status", "approved");

  // The admin raises the rule to two approvals.
  await switchUser(page, "admin");
  await page.goto(`/models/${encodeURIComponent(model)}`);
  await page.getByLabel("Approvals required").selectOption("2");
  await expect(page.getByText("production moves need 2 independent approvals")).toBeVisible();

  // The old request is read by the rule it was made under; the pending one needs the raised rule.
  await switchUser(page, "reviewer");
  await page.goto(`/models/${encodeURIComponent(model)}`);
  await expect(old.getByLabel("Approvals")).toHaveText("1 approval · rule at request time: 1 approval");
  const pending = page.getByRole("article", { name: `Promotion request #${newRequest}` });
  await expect(pending.getByLabel("Approvals")).toHaveText("0 of 2 approvals · rule raised since the request (was 1 approval)");

  // Signing once: the form goes, the reviewer's own signature (who, when) shows, and it still waits for a second reviewer.
  await pending.getByLabel("Password to sign").fill(DEMO.reviewer.password);
  await pending.getByRole("button", { name: "Approve" }).click();
  const note = pending.getByRole("note", { name: "Your signature" });
  await expect(note).toContainText(/You already signed this request: Approved by Rui Reviewer on \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/);
  await expect(note).toContainText("It waits for 1 more approval from another reviewer.");
  await expect(pending).toHaveAttribute("data-status", "pending");
  await expect(pending.getByLabel("Approvals")).toHaveText(/^1 of 2 approvals/);
  await expect(pending.getByRole("form", { name: `Sign promotion request #${newRequest}` })).toHaveCount(0);
  await page.reload();
  await expect(pending.getByRole("note", { name: "Your signature" })).toBeVisible();
  await expect(pending.getByLabel("Password to sign")).toHaveCount(0);

  // The second reviewer still has the form, and their approval decides it.
  await switchUser(page, "reviewer2");
  await page.goto(`/models/${encodeURIComponent(model)}`);
  await pending.getByLabel("Password to sign").fill(DEMO.reviewer2.password);
  await pending.getByRole("button", { name: "Approve" }).click();
  await expect(pending).toHaveAttribute("data-status", "approved");
  // Decided under the raised rule: it says so (it read "2 of 1" before the decided bar came from its approval event).
  await expect(pending.getByLabel("Approvals")).toHaveText(
    "2 approvals · rule at request time: 1 approval, raised to 2 approvals while pending",
  );
});

/** The database the e2e server writes (playwright.config.ts sets E2E_DATA_DIR), opened read-only. */
function readDatabase<T>(read: (db: Database.Database) => T): T {
  const db = new Database(path.join(process.env.E2E_DATA_DIR!, "runledger.sqlite"), { readonly: true, fileMustExist: true });
  try {
    return read(db);
  } finally {
    db.close();
  }
}

test("[REVIEW counts]: every count on the home page equals the database's (an experiment with 3 runs says 3)", async ({ page }) => {
  await signIn(page, "engineer");
  const experimentId = await seedExperiment(page);
  for (const seed of [2, 3, 4]) await seedRun(page, experimentId, seed);
  const { name } = await query<{ name: string }>(page, "projects.experiment", { id: experimentId });
  await page.goto("/");
  const rowOf = (scope: Locator | Page, experiment: string) =>
    scope.getByRole("row").filter({ has: page.getByRole("link", { name: experiment, exact: true }) });
  await expect(rowOf(page, name).getByRole("cell").nth(1)).toHaveText("3");

  const db = readDatabase((d) => ({
    projects: d.prepare("SELECT id, name FROM projects").all() as { id: number; name: string }[],
    experiments: d
      .prepare(
        "SELECT e.id AS id, e.name AS name, e.project_id AS projectId, COUNT(r.id) AS runs FROM experiments e LEFT JOIN runs r ON r.experiment_id = e.id GROUP BY e.id",
      )
      .all() as { id: number; name: string; projectId: number; runs: number }[],
  }));
  await expect(page.getByRole("region", { name: /^Project / })).toHaveCount(db.projects.length);
  for (const p of db.projects) {
    const section = page.getByRole("region", { name: `Project ${p.name}`, exact: true });
    const exps = db.experiments.filter((e) => e.projectId === p.id);
    // One row per experiment (plus the header row), each showing the database's run count.
    if (exps.length > 0) await expect(section.getByRole("row")).toHaveCount(exps.length + 1);
    for (const e of exps)
      await expect(rowOf(section, e.name).getByRole("cell").nth(1), `runs of experiment #${e.id}`).toHaveText(String(e.runs));
  }
});

test("[REVIEW production at T]: defaults to now and follows approvals; a date-time picker and quick choices at each alias move", async ({
  page,
}) => {
  const model = modelName();
  await signIn(page, "engineer");
  const experimentId = await seedExperiment(page);
  const [runA, runB] = [await seedRun(page, experimentId, 2), await seedRun(page, experimentId, 3)];
  const first = await seedRequest(page, model, runA);
  const second = await seedRequest(page, model, runB);

  await switchUser(page, "reviewer");
  await page.goto(`/models/${encodeURIComponent(model)}`);
  const answer = page.getByRole("status", { name: "Alias at time answer" });
  await expect(answer).toContainText(/^Now \(.+\), production points at no version\.$/);
  const choices = page.getByRole("group", { name: "Quick choices" });
  await expect(choices.getByRole("button", { name: "Now" })).toHaveAttribute("aria-pressed", "true");

  // Each approval moves production; the answer for "now" follows without a reload.
  for (const [requestId, version] of [
    [first, 1],
    [second, 2],
  ] as const) {
    const card = page.getByRole("article", { name: `Promotion request #${requestId}` });
    await card.getByLabel("Password to sign").fill(DEMO.reviewer.password);
    await card.getByRole("button", { name: "Approve" }).click();
    await expect(card).toHaveAttribute("data-status", "approved");
    await expect(page.getByText(`production → v${version}`).first()).toBeVisible();
    await expect(answer).toContainText(`production is v${version}`);
    await expect(answer).toContainText(`under promotion request #${requestId}`);
  }

  // Quick choices: one per move of production, at its exact time; "Now" comes back to the current version.
  await expect(choices.getByRole("button", { name: /^v\d at / })).toHaveCount(2);
  await choices.getByRole("button", { name: /^v1 at / }).click();
  await expect(answer).toContainText(/^At .+, production was v1 /);
  await expect(choices.getByRole("button", { name: /^v1 at / })).toHaveAttribute("aria-pressed", "true");
  await choices.getByRole("button", { name: /^v2 at / }).click();
  await expect(answer).toContainText("production was v2");
  await choices.getByRole("button", { name: "Now" }).click();
  await expect(answer).toContainText(/^Now \(.+\), production is v2 /);

  // The date-time picker (UTC): long before any move, production pointed at nothing.
  await page.getByLabel("Pick a date and time (UTC)").fill("2000-01-01T00:00");
  await expect(answer).toContainText("At 2000-01-01 00:00:00Z, production pointed at no version.");
  await expect(page.getByLabel("Time to look up")).toHaveValue("2000-01-01T00:00:00.000Z");
});
