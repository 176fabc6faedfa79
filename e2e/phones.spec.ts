/**
 * Phones and dark mode (issue 14, point 11 and the dark-mode part of point 12).
 *
 * At 390×844 (an iPhone 12-14 screen) no main page scrolls sideways: document.documentElement.scrollWidth never
 * exceeds its clientWidth once the page's content has loaded (wide tables scroll inside their own box); the run page's
 * header bar and panels stack without overlapping; the navigation sits behind a "Menu" button (aria-expanded) whose
 * links work. /favicon.ico is a real icon. With the system set to dark (emulated), pages have a dark background and
 * light text, the charts draw their axes and labels in a light colour, and the same pages in light mode are light.
 *
 * The test seeds its own experiment, two small Iris runs (trained by the real trainer), a model version and a one-trial
 * sweep through the API, and waits on content and states, never on fixed sleeps.
 */
import { test, expect, type Page, type Locator } from "@playwright/test";
import { createExperiment, DEMO, signIn, trpcCall, unique, uploadCsvDataset } from "./helpers";

test.use({ viewport: { width: 390, height: 844 } });

type Seed = {
  experimentId: number;
  runIds: [number, number];
  model: string;
  modelVersionId: number;
  datasetId: number;
  sweepId: number;
};

function config(seed: number) {
  return {
    data: {
      dataset: { builtin: "iris" },
      normalization: "standard",
      split: { strategy: "stratified", train: 0.7, validation: 0.15, test: 0.15, seed: 7 },
    },
    model: { layers: [{ type: "dense", units: 8, activation: "relu" }] },
    training: { optimizer: { name: "adam" }, learningRate: 0.03, batchSize: 16, epochs: 6, seed },
  };
}

async function data<T>(res: Awaited<ReturnType<typeof trpcCall>>): Promise<T> {
  expect(res.status(), await res.text()).toBe(200);
  return ((await res.json()) as { result: { data: T } }).result.data;
}

/**
 * An experiment with two completed runs, the first registered as a model version, and a one-trial sweep (as an
 * engineer); and a dataset with a long name, which the run forms' Dataset select lists (a select is as wide as its
 * longest option: it once made the fork page scroll sideways).
 */
async function seed(page: Page): Promise<Seed> {
  const rows = Array.from({ length: 12 }, (_, i) => `${i},${(i * 5) % 7},${i % 2 ? "odd" : "even"}`).join("\n");
  await uploadCsvDataset(
    page,
    unique("a dataset whose long descriptive name outgrows a phone screen"),
    `x0,x1,label\n${rows}\n${Date.now()},0,even\n`,
  );
  await createExperiment(page, unique("e2e phones"));
  const experimentId = Number(/\/experiments\/(\d+)/.exec(page.url())![1]);
  const runIds: number[] = [];
  for (const s of [1, 2]) {
    const run = await data<{ id: number }>(
      await trpcCall(page, "mutation", "runs.create", { experimentId, config: config(s), rationale: "e2e: phones layout" }),
    );
    runIds.push(run.id);
  }
  let datasetId = 0;
  for (const id of runIds) {
    await expect
      .poll(
        async () => {
          const run = await data<{ status: string; datasetVersion: { datasetId: number } | null }>(
            await trpcCall(page, "query", "runs.get", { id }),
          );
          datasetId = run.datasetVersion?.datasetId ?? 0;
          return run.status;
        },
        { timeout: 150_000 },
      )
      .toBe("completed");
  }
  const model = `phones-${Date.now().toString(36)}`;
  const version = await data<{ modelVersionId: number }>(
    await trpcCall(page, "mutation", "models.register", { runId: runIds[0], modelName: model }),
  );
  const sweep = await data<{ id: number }>(
    await trpcCall(page, "mutation", "sweeps.create", {
      experimentId,
      spec: {
        name: unique("phones sweep"),
        base: config(3),
        space: { "training.learningRate": { type: "choice", values: [0.01, 0.03] } },
        method: "grid",
        budget: { maxTrials: 1, maxParallel: 1 },
        metric: { name: "val_loss", direction: "minimize" },
        seed: 1,
        rationale: "e2e: phones layout",
      },
    }),
  );
  return { experimentId, runIds: [runIds[0]!, runIds[1]!], model, modelVersionId: version.modelVersionId, datasetId, sweepId: sweep.id };
}

/** How far the page scrolls sideways (0 when it does not). */
function sidewaysOverflow(page: Page) {
  return page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
}

async function expectNoSidewaysScroll(page: Page, what: string) {
  await expect.poll(() => sidewaysOverflow(page), { message: `${what} scrolls sideways at 390 px` }).toBeLessThanOrEqual(0);
}

/** Each main page with what shows that its content has loaded (an empty or loading page would not be wide). */
function mainPages(s: Seed): { path: string; ready: (page: Page) => Locator }[] {
  return [
    { path: "/", ready: (p) => p.getByRole("region", { name: /Project Demo: flower classifier/ }) },
    { path: `/experiments/${s.experimentId}`, ready: (p) => p.getByRole("table", { name: "Runs" }).getByRole("row").nth(2) },
    { path: `/experiments/${s.experimentId}/new-run`, ready: (p) => p.getByRole("combobox", { name: "Start from" }) },
    { path: "/runs", ready: (p) => p.getByRole("table", { name: "Runs" }).getByRole("row").nth(2) },
    { path: `/runs/${s.runIds[0]}`, ready: (p) => p.getByRole("table", { name: "Checkpoints table" }) },
    { path: `/runs/${s.runIds[0]}/fork`, ready: (p) => p.getByRole("heading", { level: 1 }) },
    { path: `/runs/${s.runIds[0]}/finetune`, ready: (p) => p.getByRole("combobox", { name: "Output layer" }) },
    { path: "/sweeps", ready: (p) => p.getByRole("table", { name: "Sweeps" }).getByRole("row").nth(1) },
    { path: `/sweeps/${s.sweepId}`, ready: (p) => p.getByRole("region", { name: "Trials", exact: true }).getByRole("row").nth(1) },
    { path: `/compare?ids=${s.runIds.join(",")}`, ready: (p) => p.getByRole("table", { name: "Hyperparameters side by side" }) },
    { path: "/models", ready: (p) => p.getByRole("table", { name: "Models" }).getByRole("link", { name: s.model }) },
    { path: `/models/${s.model}`, ready: (p) => p.getByRole("table", { name: "Model versions" }) },
    { path: `/models/${s.model}/versions/1`, ready: (p) => p.getByRole("region", { name: "Lineage graph" }) },
    { path: "/inbox", ready: (p) => p.getByRole("heading", { name: "Review inbox" }) },
    { path: "/audit", ready: (p) => p.getByRole("table", { name: "Audit events" }).getByRole("row").nth(1) },
    { path: "/datasets", ready: (p) => p.getByRole("table", { name: "Datasets", exact: true }) },
    { path: `/datasets/${s.datasetId}`, ready: (p) => p.getByRole("table", { name: /^Split \d+ partitions$/ }).first() },
    { path: `/report/${s.modelVersionId}`, ready: (p) => p.getByRole("button", { name: "Preview report" }) },
    { path: "/account", ready: (p) => p.getByRole("table", { name: "Sessions" }) },
  ];
}

/** Signs in on a phone, where the name shows only in the opened menu (helpers.signIn waits for it to be visible). */
async function signInPhone(page: Page, who: keyof typeof DEMO) {
  await page.goto("/signin");
  await page.getByLabel("Email").fill(DEMO[who].email);
  await page.getByLabel("Password").fill(DEMO[who].password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("button", { name: "Menu" })).toBeVisible();
  await expect(page.getByRole("link", { name: "Your account", includeHidden: true })).toHaveText(DEMO[who].name);
}

type Box = { x: number; y: number; width: number; height: number };
function overlaps(a: Box, b: Box) {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}

/** Relative luminance (WCAG) of a CSS colour as computed styles and chart.js write it: rgb(), rgba() or #rrggbb. */
function luminance(color: string): number {
  const hex = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(color.trim());
  const parts = hex ? hex.slice(1).map((h) => parseInt(h, 16)) : (/rgba?\(([^)]+)\)/.exec(color)?.[1] ?? "").split(",").map(Number);
  expect(parts.length, `a colour: ${color}`).toBeGreaterThanOrEqual(3);
  const [r, g, b] = parts.slice(0, 3).map((v) => {
    const c = v! / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!;
}
function contrast(a: string, b: string) {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi! + 0.05) / (lo! + 0.05);
}

function colours(locator: Locator) {
  return locator.evaluate((el) => {
    const s = getComputedStyle(el);
    return { color: s.color, background: s.backgroundColor };
  });
}

test.describe.configure({ mode: "serial" });

let seeded: Seed;

test.beforeAll(async ({ browser }) => {
  test.setTimeout(300_000);
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await signIn(page, "engineer");
  seeded = await seed(page);
  await page.close();
});

test("[PHONES]: no main page scrolls sideways at 390 px; signed out, the sign-in page neither", async ({ page }) => {
  test.setTimeout(300_000);
  await signInPhone(page, "engineer");
  for (const { path, ready } of mainPages(seeded)) {
    await page.goto(path);
    await expect(ready(page), `${path} loaded`).toBeVisible();
    await expectNoSidewaysScroll(page, path);
  }
  // The report preview (a full-width frame) fits too.
  await page.goto(`/report/${seeded.modelVersionId}`);
  await page.getByRole("button", { name: "Preview report" }).click();
  await expect(page.getByTitle("Auditor's report preview")).toBeVisible();
  await expectNoSidewaysScroll(page, "the report preview");
  // Wide tables scroll inside their own box: the audit events table is wider than the screen, its box is not.
  await page.goto("/audit");
  const events = page.getByRole("table", { name: "Audit events" });
  await expect(events.getByRole("row").nth(1)).toBeVisible();
  const scroller = events.locator("xpath=..");
  await expect(scroller).toHaveCSS("overflow-x", "auto");
  const widths = await scroller.evaluate((el) => ({ box: el.clientWidth, content: el.scrollWidth }));
  expect(widths.box).toBeLessThanOrEqual(390);
  expect(widths.content).toBeGreaterThan(widths.box);

  await page.context().clearCookies();
  await page.goto("/signin");
  await expect(page.getByRole("button", { name: "Sign in" })).toBeVisible();
  await expectNoSidewaysScroll(page, "/signin");
});

test("[PHONES]: the run page's header bar and panels stack without overlapping, its actions in view", async ({ page }) => {
  await signInPhone(page, "engineer");
  await page.goto(`/runs/${seeded.runIds[0]}`);
  await expect(page.locator("[data-status]").first()).toHaveAttribute("data-status", "completed");
  await expect(page.getByRole("img", { name: "Loss curve" })).not.toHaveAttribute("data-points", "0");
  const header = page.getByRole("region", { name: "Run header" });
  const names = ["Roll back", "Interventions", "Curves", "Decisions timeline", "Summary", "Checkpoints", "Register as model version"];
  const boxes: { name: string; box: Box }[] = [{ name: "Run header", box: (await header.boundingBox())! }];
  for (const name of names) {
    const panel = page.getByRole("region", { name, exact: true });
    await expect(panel).toBeVisible();
    boxes.push({ name, box: (await panel.boundingBox())! });
  }
  // And every block of the page itself (breadcrumb, header, description, the two-column groups, panels) in turn.
  const blocks = await page.locator("main > *").evaluateAll((els) =>
    els
      .map((el, i) => ({
        name: `block ${i + 1} (${el.tagName.toLowerCase()} ${el.getAttribute("aria-label") ?? el.className})`,
        r: el.getBoundingClientRect(),
      }))
      .filter(({ r }) => r.width > 0 && r.height > 0)
      .map(({ name, r }) => ({ name, box: { x: r.x, y: r.y + window.scrollY, width: r.width, height: r.height } })),
  );
  expect(blocks.length).toBeGreaterThan(5);
  for (const { name, box } of [...boxes, ...blocks]) {
    expect(box.x, `${name} starts on screen`).toBeGreaterThanOrEqual(0);
    expect(box.x + box.width, `${name} ends on screen`).toBeLessThanOrEqual(390 + 0.5);
  }
  for (const group of [boxes, blocks])
    for (let i = 0; i < group.length; i++)
      for (let j = i + 1; j < group.length; j++)
        expect(overlaps(group[i]!.box, group[j]!.box), `${group[i]!.name} overlaps ${group[j]!.name}`).toBe(false);
  // Stacked in one column: the curves above the decisions (side by side on a wide screen).
  const curves = boxes.find((b) => b.name === "Curves")!.box;
  const decisions = boxes.find((b) => b.name === "Decisions timeline")!.box;
  expect(decisions.y).toBeGreaterThanOrEqual(curves.y + curves.height);
  // The charts fit the screen.
  const chart = (await page.getByRole("img", { name: "Loss curve" }).boundingBox())!;
  expect(chart.x + chart.width).toBeLessThanOrEqual(390);
  await expectNoSidewaysScroll(page, "the run page");

  // The header keeps its actions in view at the bottom of the page; Register takes the person to the form, below the header.
  await page.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
  await expect.poll(() => page.evaluate(() => window.scrollY)).toBeGreaterThan(0);
  await expect(header.getByRole("button", { name: "Register as model version" })).toBeInViewport();
  await header.getByRole("button", { name: "Register as model version" }).click();
  const register = page.getByRole("region", { name: "Register as model version" });
  await expect(register.getByLabel("Model name")).toBeFocused();
  await expect(register.getByLabel("Model name")).toBeInViewport();
  await expect
    .poll(async () => {
      const h = (await header.boundingBox())!;
      const field = (await register.getByLabel("Model name").boundingBox())!;
      return field.y >= h.y + h.height;
    })
    .toBe(true);
});

test("[PHONES]: the navigation opens from the Menu button and its links work", async ({ page }) => {
  await signInPhone(page, "engineer");
  await page.goto("/runs");
  const menu = page.getByRole("button", { name: "Menu" });
  const nav = page.getByRole("navigation", { name: "Main" });
  await expect(menu).toHaveAttribute("aria-expanded", "false");
  await expect(nav).toBeHidden();
  await menu.click();
  await expect(menu).toHaveAttribute("aria-expanded", "true");
  await expect(nav).toBeVisible();
  await expect(page.getByRole("link", { name: "Your account" })).toBeVisible();
  await expectNoSidewaysScroll(page, "the open menu");
  await nav.getByRole("link", { name: "Models" }).click();
  await expect(page).toHaveURL(/\/models$/);
  await expect(page.getByRole("heading", { name: "Models", level: 1 })).toBeVisible();
  await expect(menu).toHaveAttribute("aria-expanded", "false");
  await expect(nav).toBeHidden();
  // Escape closes it and gives the focus back to the button.
  await menu.click();
  await expect(nav.getByRole("link", { name: "Datasets" })).toBeVisible();
  await page.keyboard.press("Escape");
  await expect(nav).toBeHidden();
  await expect(menu).toBeFocused();
  // Another link, then on a wide screen the navigation shows itself and the button is gone.
  await menu.click();
  await nav.getByRole("link", { name: "Audit" }).click();
  await expect(page).toHaveURL(/\/audit$/);
  await page.setViewportSize({ width: 1280, height: 800 });
  await expect(nav).toBeVisible();
  await expect(menu).toBeHidden();
});

test("[PHONES]: /favicon.ico is an icon and pages link it", async ({ page }) => {
  const res = await page.request.get("/favicon.ico");
  expect(res.status()).toBe(200);
  expect(res.headers()["content-type"]).toMatch(/^image\//);
  expect((await res.body()).subarray(0, 4)).toEqual(Buffer.from([0, 0, 1, 0])); // an ICO file's header
  await page.goto("/signin");
  const icons = page.locator('link[rel="icon"]');
  await expect(icons.first()).toBeAttached();
  for (const href of await icons.evaluateAll((ls) => ls.map((l) => l.getAttribute("href")!))) {
    const icon = await page.request.get(href);
    expect(icon.status(), href).toBe(200);
    expect(icon.headers()["content-type"], href).toMatch(/^image\//);
  }
});

test("[DARK MODE]: with the system set to dark, pages are dark with light text and readable badges, code and charts; light mode stays light", async ({
  page,
}) => {
  test.setTimeout(180_000);
  await signInPhone(page, "engineer");
  const runPath = `/runs/${seeded.runIds[0]}`;
  const pages: { path: string; ready: (p: Page) => Locator }[] = [
    { path: "/", ready: (p) => p.getByRole("region", { name: /Project Demo: flower classifier/ }) },
    { path: "/runs", ready: (p) => p.getByRole("table", { name: "Runs" }).getByRole("row").nth(2) },
    { path: runPath, ready: (p) => p.getByRole("table", { name: "Checkpoints table" }) },
    { path: "/audit", ready: (p) => p.getByRole("table", { name: "Audit events" }).getByRole("row").nth(1) },
  ];
  for (const scheme of ["dark", "light"] as const) {
    await page.emulateMedia({ colorScheme: scheme });
    for (const { path, ready } of pages) {
      await page.goto(path);
      await expect(ready(page)).toBeVisible();
      const body = await colours(page.locator("body"));
      const panel = await colours(page.locator(".panel").first());
      const th = await colours(page.locator("th").first());
      if (scheme === "dark") {
        expect(luminance(body.background), `${path} background is dark`).toBeLessThan(0.05);
        expect(luminance(body.color), `${path} text is light`).toBeGreaterThan(0.6);
        expect(luminance(panel.background), `${path} panels are dark`).toBeLessThan(0.05);
      } else {
        expect(luminance(body.background), `${path} background is light`).toBeGreaterThan(0.85);
        expect(luminance(body.color), `${path} text is dark`).toBeLessThan(0.05);
      }
      expect(contrast(body.color, body.background), `${path} text contrast`).toBeGreaterThanOrEqual(7);
      expect(contrast(th.color, panel.background), `${path} table headings contrast`).toBeGreaterThanOrEqual(4.5);
    }
    // The run page's badge, a hash (code) and its links read on their own backgrounds.
    await page.goto(runPath);
    const badge = page.locator("[data-status]").first();
    await expect(badge).toHaveAttribute("data-status", "completed");
    const b = await colours(badge);
    expect(contrast(b.color, b.background), `${scheme}: status badge contrast`).toBeGreaterThanOrEqual(4.5);
    const hash = await colours(page.locator(".hash").first());
    expect(contrast(hash.color, hash.background), `${scheme}: hash contrast`).toBeGreaterThanOrEqual(4.5);
    const link = await colours(page.getByRole("link", { name: "Fork run" }));
    const bg = await colours(page.locator("body"));
    expect(contrast(link.color, bg.background), `${scheme}: link contrast`).toBeGreaterThanOrEqual(4.5);
    // Charts: the axes' tick labels and titles are drawn in a colour that reads on the panel.
    const chart = page.getByRole("img", { name: "Loss curve" });
    await expect(chart).not.toHaveAttribute("data-points", "0");
    const panelBg = (await colours(page.getByRole("region", { name: "Curves" }))).background;
    const text = (await chart.getAttribute("data-text-color"))!;
    expect(contrast(text, panelBg), `${scheme}: chart labels contrast (${text} on ${panelBg})`).toBeGreaterThanOrEqual(4.5);
  }
  // Switching the system setting while the page is open redraws the charts in the new colours.
  await page.emulateMedia({ colorScheme: "dark" });
  const chart = page.getByRole("img", { name: "Loss curve" });
  await expect.poll(async () => luminance((await chart.getAttribute("data-text-color"))!)).toBeGreaterThan(0.4);
});
