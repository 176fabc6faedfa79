import { chromium } from "@playwright/test";
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox", "--disable-gpu"] });
const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
const base = "http://127.0.0.1:3502";
await page.goto(base + "/signin");
await page.getByLabel("Email").fill("engineer@runledger.local");
await page.getByLabel("Password").fill("engineer-demo-pass");
await page.getByRole("button", { name: "Sign in" }).click();
await page.getByText("Erin Engineer").waitFor();
await page.goto(base + "/runs");
await page.getByText(/10,001 runs/).waitFor({ timeout: 30000 });
const scroll = (step) => page.evaluate(async (step) => {
  const el = document.querySelector('[data-testid="runs-scroll"]');
  const frames = []; let last = performance.now();
  for (let i = 0; i < 100; i++) { el.scrollTop += step; await new Promise((r) => requestAnimationFrame(r)); const now = performance.now(); frames.push(now - last); last = now; }
  frames.sort((a, b) => a - b);
  return { median: +frames[50].toFixed(1), p95: +frames[95].toFixed(1), max: +frames[99].toFixed(1) };
}, step);
console.log("first pass (fetching pages), 200px/frame", JSON.stringify(await scroll(200)));
await page.evaluate(() => { document.querySelector('[data-testid="runs-scroll"]').scrollTop = 0; });
await page.waitForTimeout(500);
console.log("second pass (cached pages), 200px/frame", JSON.stringify(await scroll(200)));
console.log("idle frame baseline", JSON.stringify(await page.evaluate(async () => { const f = []; let l = performance.now(); for (let i = 0; i < 60; i++) { await new Promise((r) => requestAnimationFrame(r)); const n = performance.now(); f.push(n - l); l = n; } f.sort((a, b) => a - b); return { median: +f[30].toFixed(1), p95: +f[57].toFixed(1) }; })));
await page.screenshot({ path: "/tmp/runs10k-mid.png" });
await browser.close();
