/**
 * Issue 11 over real HTTP against `next start` and in the browser: user management with a forced password change,
 * same-origin redirects after sign-in, security headers and CSP nonces, malformed cookies, oversized bodies,
 * throttling with 429 + Retry-After, and a sign-in flood that does not stall other requests.
 * Requests that must not share throttling counts with other specs send their own X-Forwarded-For address.
 */
import { test, expect, type APIRequestContext, type Page } from "@playwright/test";
import fs from "node:fs";
import path from "node:path";
import { DEMO, signIn, trpcMutate, trpcQuery, unique } from "./helpers";

const post = (request: APIRequestContext, proc: string, input: unknown, headers: Record<string, string> = {}) =>
  request.post(`/api/trpc/${proc}`, { data: input as object, headers });
const uniqueEmail = (prefix: string) =>
  `${unique(prefix)
    .replace(/[^a-z0-9]+/gi, "-")
    .toLowerCase()}@example.org`;

async function changePassword(page: Page, current: string, next: string) {
  const form = page.getByRole("region", { name: "Change password" });
  await form.getByLabel("Current password", { exact: true }).fill(current);
  await form.getByLabel("New password", { exact: true }).fill(next);
  await form.getByLabel("Confirm new password").fill(next);
  await form.getByRole("button", { name: "Change password" }).click();
}

async function signInWith(page: Page, email: string, password: string) {
  await page.goto("/signin");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
}

test("[AUTH]: an admin creates a user and resets their password; the user must change it at next sign-in", async ({ page, browser }) => {
  await signIn(page, "admin");
  await expect(page.getByRole("alert").filter({ hasText: "Demo accounts still use their public passwords" })).toBeVisible();
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Users" }).click();
  const email = uniqueEmail("e2e-user");
  const form = page.getByRole("form", { name: "Create a user" });
  await form.getByLabel("Email").fill(email);
  await form.getByLabel("Name").fill("Eve Twoe");
  await form.getByLabel("Role").selectOption("reviewer");
  await form.getByRole("button", { name: "Create user" }).click();
  const shown = page.getByLabel("Temporary password");
  await expect(shown).toHaveText(/^[A-Za-z0-9_-]{16}$/);
  const temporary = (await shown.textContent())!;

  const userContext = await browser.newContext();
  const user = await userContext.newPage();
  await signInWith(user, email, temporary);
  await expect(user).toHaveURL(/\/account/);
  await expect(user.getByRole("alert").filter({ hasText: "temporary one set by an administrator" })).toBeVisible();
  await user.goto("/runs");
  await expect(user).toHaveURL(/\/account\?next=%2Fruns/); // nothing else until the password is changed
  await changePassword(user, temporary, "eve-own-password-1");
  await expect(user).toHaveURL(/\/runs$/);
  await expect(user.getByRole("link", { name: "Your account" })).toHaveText("Eve Twoe");

  await page.reload();
  await page.getByRole("row", { name: email }).getByRole("button", { name: "Reset password" }).click();
  await expect(shown).not.toHaveText(temporary);
  await expect(page.getByRole("status").filter({ hasText: email })).toBeVisible();
  const reset = (await shown.textContent())!;

  await user.goto("/runs");
  await expect(user).toHaveURL(/\/signin/); // the reset ended the user's session
  await signInWith(user, email, "eve-own-password-1");
  await expect(user.getByRole("alert").filter({ hasText: "wrong email or password" })).toBeVisible();
  await signInWith(user, email, reset);
  await expect(user).toHaveURL(/\/account/);
  await changePassword(user, reset, "eve-own-password-2");
  await expect(user).toHaveURL(/\/$/);
  await userContext.close();
});

test("[AUTH]: on the Users page a refused change shows the user as they now are, and its message goes once a later action succeeds", async ({
  page,
}) => {
  await signIn(page, "admin");
  await page.goto("/users");
  const email = uniqueEmail("e2e-stale");
  const form = page.getByRole("form", { name: "Create a user" });
  await form.getByLabel("Email").fill(email);
  await form.getByLabel("Name").fill("Sam Stale");
  await form.getByLabel("Role").selectOption("reviewer");
  await form.getByRole("button", { name: "Create user" }).click();
  const shown = page.getByLabel("Temporary password");
  await expect(shown).toHaveText(/^[A-Za-z0-9_-]{16}$/);
  const first = (await shown.textContent())!;
  const row = page.getByRole("row", { name: email });
  await expect(row.getByLabel(`Role of ${email}`)).toHaveValue("reviewer");

  // Meanwhile the user becomes an auditor elsewhere (another administrator; here the API): this page still says reviewer.
  const { users } = await trpcQuery<{ users: { id: number; email: string }[] }>(page, "users.list");
  await trpcMutate(page, "users.update", { userId: users.find((u) => u.email === email)!.id, role: "auditor" });
  await row.getByLabel(`Role of ${email}`).selectOption("auditor");
  await row.getByRole("button", { name: "Save role" }).click();
  const refusal = page.getByRole("alert").filter({ hasText: "nothing to change" });
  await expect(refusal).toBeVisible();
  // The row now shows the user as they are (auditor), with nothing left to save.
  await expect(row.getByLabel(`Role of ${email}`)).toHaveValue("auditor");
  await expect(row.getByRole("button", { name: "Save role" })).toHaveCount(0);

  // A later action that succeeds replaces the refusal instead of appearing beside it.
  await row.getByRole("button", { name: "Reset password" }).click();
  await expect(shown).not.toHaveText(first);
  await expect(refusal).toHaveCount(0);
});

test("[AUTH]: after sign-in the browser goes only to same-origin paths", async ({ page, baseURL }) => {
  const offsite: string[] = [];
  page.on("request", (r) => {
    if (!r.url().startsWith(baseURL!)) offsite.push(r.url());
  });
  for (const next of ["/\\evil.example/phish", "//evil.example/phish", "/%5C%5Cevil.example", "https://evil.example/phish"]) {
    await page.goto(`/signin?next=${encodeURIComponent(next)}`);
    await page.getByLabel("Email").fill(DEMO.auditor.email);
    await page.getByLabel("Password").fill(DEMO.auditor.password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect(page.getByRole("link", { name: "Your account" })).toBeVisible();
    expect(new URL(page.url()).origin).toBe(new URL(baseURL!).origin);
    expect(new URL(page.url()).pathname).toBe("/");
  }
  await page.goto(`/signin?next=${encodeURIComponent("/runs?view=table")}`);
  await page.getByLabel("Email").fill(DEMO.auditor.email);
  await page.getByLabel("Password").fill(DEMO.auditor.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/runs\?view=table$/);
  expect(offsite).toEqual([]);
});

test("[AUTH]: security headers; scripts run only with the page's nonce, and the app runs under the CSP", async ({ page, request }) => {
  const first = await request.get("/signin");
  const h = first.headers();
  const nonce = /script-src 'self' 'nonce-([^']+)' 'strict-dynamic'/.exec(h["content-security-policy"] ?? "")?.[1];
  expect(nonce).toBeTruthy();
  expect(h["content-security-policy"]).toContain("frame-ancestors 'none'");
  expect(h["content-security-policy"]).not.toMatch(/script-src[^;]*'unsafe-inline'/);
  expect(h["x-frame-options"]).toBe("DENY");
  expect(h["x-content-type-options"]).toBe("nosniff");
  expect(h["referrer-policy"]).toBe("same-origin");
  const scripts = (await first.text()).match(/<script\b[^>]*>/g) ?? [];
  expect(scripts.length).toBeGreaterThan(0);
  for (const s of scripts) expect(s).toContain(`nonce="${nonce}"`);
  const second = (await request.get("/signin")).headers()["content-security-policy"];
  expect(second).not.toContain(nonce);

  const api = (await request.get("/api/trpc/auth.me")).headers();
  expect(api["content-security-policy"]).toBe("default-src 'none'; frame-ancestors 'none'");
  expect(api["x-content-type-options"]).toBe("nosniff");
  const report = (await request.post("/api/report/999999?format=html", { headers: { "sec-fetch-site": "same-origin" } })).headers();
  expect(report["content-security-policy"]).toMatch(/^default-src 'none'; style-src 'unsafe-inline';.*frame-ancestors 'self'$/);
  expect(report["content-security-policy"]).not.toMatch(/script-src/);
  expect(report["x-frame-options"]).toBe("SAMEORIGIN");

  const violations: string[] = [];
  page.on("console", (m) => {
    if (/Content Security Policy|Refused to (execute|load)/i.test(m.text())) violations.push(m.text());
  });
  await signIn(page, "engineer");
  for (const link of ["Runs", "Datasets", "Models", "Audit"]) {
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: link }).click();
    await expect(page.getByRole("heading", { level: 1 })).toBeVisible();
  }
  expect(violations).toEqual([]);
});

test("[AUTH]: a malformed session cookie gets 401 (no 500, no stack trace) and is cleared", async ({ request }) => {
  for (const value of ["%E0%A4%A", "not-a-token", "x".repeat(300)]) {
    const res = await request.get("/api/trpc/projects.list", { headers: { cookie: `runledger_session=${value}` } });
    expect(res.status()).toBe(401);
    const body = await res.text();
    expect(body).toMatch(/session cookie is not valid: sign in again/);
    expect(body).not.toMatch(/\n\s+at |"stack"/);
    expect(res.headers()["set-cookie"]).toMatch(/runledger_session=; .*Max-Age=0/);
    const report = await request.post("/api/report/1?format=html", {
      headers: { cookie: `runledger_session=${value}`, "sec-fetch-site": "same-origin" },
    });
    expect(report.status()).toBe(401);
  }
});

test("[AUTH]: a 50 MB email is refused with 413 before the database, which does not grow", async ({ request }) => {
  const dataDir = process.env.E2E_DATA_DIR!;
  const size = () =>
    ["runledger.sqlite", "runledger.sqlite-wal"].reduce(
      (n, f) => n + (fs.existsSync(path.join(dataDir, f)) ? fs.statSync(path.join(dataDir, f)).size : 0),
      0,
    );
  const before = size();
  const t0 = Date.now();
  const signInWithEmailOf = (bytes: number, address: string) =>
    request.post("/api/trpc/auth.signIn", {
      data: `{"email":"${"a".repeat(bytes)}@example.org","password":"x"}`,
      headers: { "content-type": "application/json", "x-forwarded-for": address },
    });
  // The server answers 413 as soon as the limit is passed and stops reading, so the client may still be writing the
  // rest of the 50 MB when the connection closes: a write error (EPIPE, reset) is the same refusal seen from the client.
  const huge = await signInWithEmailOf(50 * 1024 * 1024, "192.0.2.50").catch((e: Error) => {
    expect(e.message).toMatch(/EPIPE|ECONNRESET|socket hang up/);
    return null;
  });
  if (huge) expect(huge.status()).toBe(413);
  expect(Date.now() - t0).toBeLessThan(10_000);
  expect(size() - before).toBeLessThan(64 * 1024); // at most a timer checkpoint; the issue saw +229 MB
  const overLimit = await signInWithEmailOf(1_100_000, "192.0.2.52");
  expect(overLimit.status()).toBe(413);
  expect((await overLimit.json()).error.message).toMatch(/request body is over the 1024 KiB limit/);
  const long = await post(
    request,
    "auth.signIn",
    { email: `${"b".repeat(300)}@example.org`, password: "x" },
    { "x-forwarded-for": "192.0.2.51" },
  );
  expect(long.status()).toBe(400);
  expect(await long.text()).toContain("an email address is at most 254 characters");
});

test("[AUTH]: 30 wrong passwords are throttled with 429 and Retry-After; the token is never in a body", async ({ request }) => {
  const admin = await post(
    request,
    "auth.signIn",
    { email: DEMO.admin.email, password: DEMO.admin.password },
    { "x-forwarded-for": "192.0.2.60" },
  );
  expect(admin.status()).toBe(200);
  const token = /runledger_session=([^;]+)/.exec(admin.headers()["set-cookie"] ?? "")![1]!;
  expect(await admin.text()).not.toContain(token);
  const email = uniqueEmail("e2e-throttle");
  const created = await post(
    request,
    "users.create",
    { email, name: "Theo Throttle", role: "auditor" },
    { cookie: `runledger_session=${token}` },
  );
  expect(created.status()).toBe(200);

  const statuses: number[] = [];
  let retryAfter: string | undefined;
  for (let i = 0; i < 30; i++) {
    const res = await post(request, "auth.signIn", { email, password: `guess-${i}` }, { "x-forwarded-for": `192.0.2.${100 + i}` });
    statuses.push(res.status());
    if (res.status() === 429) retryAfter ??= res.headers()["retry-after"];
  }
  expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
  expect(statuses.slice(5)).toEqual(Array(25).fill(429));
  expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
});

test("[AUTH]: 100 concurrent wrong sign-ins do not stall other requests", async ({ page, request }) => {
  await signIn(page, "engineer");
  const stamp = Date.now();
  const flood = Promise.all(
    Array.from({ length: 100 }, (_, i) =>
      post(
        request,
        "auth.signIn",
        { email: `flood-${stamp}-${i}@example.org`, password: "wrong" },
        { "x-forwarded-for": `198.51.100.${i + 1}` },
      ).then((r) => r.status()),
    ),
  );
  const latencies: number[] = [];
  for (let i = 0; i < 30; i++) {
    const t0 = performance.now();
    const res = await page.request.get("/api/trpc/projects.list");
    latencies.push(performance.now() - t0);
    expect(res.status()).toBe(200);
  }
  const statuses = await flood;
  expect(statuses.every((s) => s === 401 || s === 429)).toBe(true);
  latencies.sort((a, b) => a - b);
  const p95 = latencies[Math.ceil(latencies.length * 0.95) - 1]!;
  console.log(
    `signin flood: p95 of projects.list = ${p95.toFixed(0)} ms (max ${latencies.at(-1)!.toFixed(0)} ms); flood statuses 401×${statuses.filter((s) => s === 401).length}, 429×${statuses.filter((s) => s === 429).length}`,
  );
  expect(p95).toBeLessThan(500); // the issue measured a 14.2 s stall
});

test("[AUTH]: the report preview renders in a sandboxed frame, under a policy with no scripts", async ({ page }) => {
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
    training: { optimizer: { name: "adam" }, learningRate: 0.03, batchSize: 16, epochs: 1, seed: 3 },
  };
  const run = (await (await post(page.request, "runs.create", { experimentId, config, rationale: "e2e: sandboxed report preview" })).json())
    .result.data as { id: number };
  await expect
    .poll(
      async () =>
        (await (await page.request.get(`/api/trpc/runs.get?input=${encodeURIComponent(JSON.stringify({ id: run.id }))}`)).json()).result
          .data.status,
      { timeout: 90_000 },
    )
    .toBe("completed");
  const model = unique("e2e-sandbox").replace(/\s+/g, "-");
  const version = (await (await post(page.request, "models.register", { runId: run.id, modelName: model })).json()).result.data as {
    modelVersionId: number;
    weightsSha256: string;
  };

  await page.goto(`/report/${version.modelVersionId}`);
  const frame = page.locator('iframe[title="Auditor\'s report preview"]');
  await expect(frame).toHaveAttribute("sandbox", "");
  const preview = page.waitForResponse((r) => r.url().includes(`/api/report/${version.modelVersionId}?format=html`));
  await page.getByRole("button", { name: "Preview report" }).click();
  const headers = (await preview).headers();
  expect(headers["content-security-policy"]).toMatch(/^default-src 'none'; style-src 'unsafe-inline';/);
  await expect(page.frameLocator('iframe[title="Auditor\'s report preview"]').locator("code.weights")).toHaveText(version.weightsSha256);
});
