import { test, expect, type Page } from "@playwright/test";
import { signIn, trpcCall, unique, DEMO } from "./helpers";

/**
 * A real witness (`witness serve`, started by playwright.config.ts next to the app) cosigns the app's checkpoints:
 * signing a datasheet section makes the server sign a checkpoint, the app pushes it in the background, and the
 * Audit page's Witnesses panel shows the witness reachable and its cosignature at that tree size.
 */
async function call<T>(page: Page, kind: "query" | "mutation", proc: string, input: unknown): Promise<T> {
  const res = await trpcCall(page, kind, proc, input);
  expect(res.status(), `${proc}: ${await res.text()}`).toBe(200);
  return ((await res.json()) as { result: { data: T } }).result.data;
}

test("[WITNESS]: a checkpoint is cosigned by the witness and the cosignature is shown on the Audit page", async ({ page }) => {
  await signIn(page, "engineer");
  const list = await page.request.get("/api/trpc/datasets.list");
  expect(list.status()).toBe(200);
  const datasets = ((await list.json()) as { result: { data: { id: number }[] } }).result.data;
  expect(datasets.length).toBeGreaterThan(0);
  const subject = { subjectType: "dataset", subjectId: datasets[0]!.id };

  // Signing a section signs an audit checkpoint right after the signature commits.
  const docs = await call<{ sections: { key: string; latest: { version: number } | null }[] }>(page, "query", "documents.get", subject);
  const baseVersion = docs.sections.find((s) => s.key === "data_collection")?.latest?.version ?? 0;
  const doc = await call<{ id: number }>(page, "mutation", "documents.update", {
    ...subject,
    section: "data_collection",
    body: unique("e2e witness: collected from the built-in catalogue"),
    baseVersion,
  });
  const signed = await call<{ auditCheckpoint: { ok: boolean; treeSize: number } }>(page, "mutation", "documents.sign", {
    documentId: doc.id,
    meaning: "authorship",
    password: DEMO.engineer.password,
  });
  expect(signed.auditCheckpoint.ok).toBe(true);
  const treeSize = signed.auditCheckpoint.treeSize;

  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Audit" }).click();
  const panel = page.getByRole("region", { name: "Witnesses" });
  await expect(panel.getByRole("heading", { name: "Witnesses" })).toBeVisible();
  const witnesses = panel.getByRole("table", { name: "Configured witnesses" });
  await expect(witnesses.getByRole("row").filter({ hasText: "e2e.witness/w1" })).toBeVisible();
  // The push runs in the background; the panel refreshes itself.
  const row = panel.getByRole("table", { name: "Witness cosignatures" }).locator(`tr[data-tree-size="${treeSize}"]`);
  await expect(row).toBeVisible();
  await expect(row).toContainText("e2e.witness/w1");
  await expect(row).toContainText("valid");
  await expect(row.getByRole("button", { name: `Copy root cosigned at tree size ${treeSize}` })).toBeVisible();
  await expect(panel.getByRole("status", { name: "Status of witness e2e.witness/w1" })).toContainText("reachable");
  await expect(panel.getByRole("status", { name: "Status of witness e2e.witness/w1" })).toHaveAttribute("data-reachable", "true");
});
