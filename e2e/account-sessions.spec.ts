/**
 * The account page's Sessions table in a real browser: every browser signed in as the user is listed, this one
 * marked; each is named in words ("Firefox 128 on Windows"), the user agent it sent in the cell's title; ending
 * another session signs that browser out. The second browser sends a user agent of its own, with a marker, so its
 * row is told apart from the sessions other tests left on the shared server.
 */
import { test, expect } from "@playwright/test";
import { signIn, unique } from "./helpers";

test("[ACCOUNT]: sessions name each browser in words; ending another one signs that browser out", async ({ page, browser }) => {
  const marker = unique("e2e-sessions").replace(/\s+/g, "-");
  const firefoxAgent = `Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0 ${marker}`;
  const other = await (await browser.newContext({ userAgent: firefoxAgent })).newPage();
  await signIn(other, "auditor");
  await signIn(page, "auditor");

  await page.goto("/account");
  const sessions = page.getByRole("table", { name: "Sessions" });
  const mine = sessions.getByRole("row").filter({ hasText: "this browser" });
  await expect(mine).toHaveCount(1);
  // This browser: Chromium, under the user agent the test device sends.
  await expect(mine.getByRole("cell").nth(3)).toHaveAttribute("title", await page.evaluate(() => navigator.userAgent));
  await expect(mine.getByRole("cell").nth(3)).toHaveText(/^Chrome \d+ on (Linux|Windows|macOS)$/);
  const theirs = sessions.getByRole("row").filter({ has: page.locator(`td[title="${firefoxAgent}"]`) });
  await expect(theirs.getByRole("cell").nth(3)).toHaveText("Firefox 128 on Windows");

  await theirs.getByRole("button", { name: "End session" }).click();
  await expect(theirs).toHaveCount(0);
  await other.goto("/account");
  await expect(other).toHaveURL(/\/signin/);
  await other.context().close();
});
