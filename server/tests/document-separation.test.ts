/**
 * Issue 11, separation of duties for model cards and datasheets: the author of a section version cannot sign its
 * review. The attempt is refused AND recorded (document.selfReviewRefused), like promotions' self-approval refusals;
 * another reviewer can review it, and the author can still sign authorship.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { and, eq } from "drizzle-orm";
import { auditEvents, signatures } from "@/db/schema";
import { DEMO_USERS } from "@/server/demo/seed";
import { createTestApp, type TestApp } from "./test-app";
import { uploadCsvAs } from "./upload-helpers";

let app: TestApp;
let datasetId: number;
beforeAll(async () => {
  app = createTestApp();
  const csv = ["x,y,label", ...Array.from({ length: 20 }, (_, i) => `${i},${i % 3},${i % 2 ? "a" : "b"}`)].join("\n");
  datasetId = (await uploadCsvAs(app, "engineer", csv, { name: "separation-of-duties", labelColumn: "label" })).id;
});
afterAll(() => app.close());

const password = (i: number) => DEMO_USERS[i]!.password;

describe("document review by its author", () => {
  it("is refused and recorded; another reviewer reviews; the author signs authorship", async () => {
    const doc = await app.as("reviewer").documents.update({
      subjectType: "dataset",
      subjectId: datasetId,
      section: "data_collection",
      body: "Synthetic rows made for this test.",
      baseVersion: 0,
    });
    await expect(app.as("reviewer").documents.sign({ documentId: doc.id, meaning: "review", password: password(2) })).rejects.toMatchObject(
      { code: "FORBIDDEN", message: expect.stringMatching(/wrote version 1 of "data_collection" and cannot sign its review/) },
    );
    const refused = app.db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.action, "document.selfReviewRefused"), eq(auditEvents.entityId, String(doc.id))))
      .all();
    expect(refused).toHaveLength(1);
    expect(JSON.parse(refused[0]!.payload)).toMatchObject({
      meaning: "review",
      reason: "author of this version",
      version: 1,
      recordSha256: doc.sha256,
    });
    expect(app.db.select().from(signatures).where(eq(signatures.recordId, doc.id)).all()).toHaveLength(0);

    await app.as("reviewer").documents.sign({ documentId: doc.id, meaning: "authorship", password: password(2) });
    await app.as("reviewer2").documents.sign({ documentId: doc.id, meaning: "review", password: password(4) });
    const signed = app.db
      .select()
      .from(signatures)
      .where(eq(signatures.recordId, doc.id))
      .all()
      .map((s) => `${s.printedName}: ${s.meaning}`);
    expect(signed.sort()).toEqual(["Rita Second-Reviewer: review", "Rui Reviewer: authorship"]);
  });
});
