/**
 * A real app database for content-verification tests: a short Iris run (learning rate 0.02) trained by the real
 * trainer, two model versions (best checkpoint and epoch 1), a promotion to production approved by a reviewer, a
 * staging alias move, a decision note, a signed model-card section. `snapshot()` copies the database (VACUUM INTO)
 * and the artifact store into a fresh folder that a test may tamper with for real, through a raw connection.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { DEMO_USERS } from "@/server/demo/seed";
import { createTestApp, irisConfig, type TestApp } from "@/server/tests/test-app";

export const MODEL = "iris-content";

export type ContentFixture = {
  app: TestApp;
  runId: number;
  bestVersionId: number;
  epoch1VersionId: number;
  noteId: number;
  documentId: number;
};

export async function buildContentFixture(): Promise<ContentFixture> {
  const app = createTestApp();
  const engineer = app.as("engineer");
  const { id: runId } = await engineer.runs.create({
    experimentId: app.experimentId,
    config: irisConfig({ epochs: 3, learningRate: 0.02 }),
    rationale: "baseline: small MLP, learning rate 0.02",
  });
  await app.orchestrator.waitFor(runId);
  const best = await engineer.models.register({ runId, modelName: MODEL });
  const epoch1 = await engineer.models.register({ runId, modelName: MODEL, checkpoint: { epoch: 1 } });
  const note = await app.as("reviewer").decisions.addNote({ runId, rationale: "validation loss still falling at the last epoch" });
  const req = await engineer.models.requestPromotion({
    modelName: MODEL,
    version: best.version,
    acknowledgeMissingDocumentation: true,
    rationale: "best checkpoint, test accuracy checked",
  });
  const signed = await app
    .as("reviewer2")
    .models.sign({ requestId: req.id, meaning: "approval", password: DEMO_USERS[4]!.password, comment: "confusion matrix checked" });
  if (signed.status !== "approved") throw new Error(`fixture: promotion not approved (${signed.status})`);
  await engineer.models.moveAlias({
    modelName: MODEL,
    alias: "staging",
    version: epoch1.version,
    rationale: "try the early checkpoint in staging",
  });
  const model = await engineer.models.get({ name: MODEL });
  const doc = await engineer.documents.update({
    subjectType: "model",
    subjectId: model.id,
    section: "intended_use",
    body: "Classifies iris flowers from four measurements. Teaching use only.",
    baseVersion: 0,
  });
  await app
    .as("reviewer")
    .documents.sign({ documentId: doc.id, meaning: "review", password: DEMO_USERS[2]!.password, comment: "scope is clear" });
  return { app, runId, bestVersionId: best.modelVersionId, epoch1VersionId: epoch1.modelVersionId, noteId: note.id, documentId: doc.id };
}

export type Snapshot = { dir: string; db: Database.Database; artifactsDir: string; maxSeq: number; close: () => void };

/** A tamperable copy of the app's database and artifact store. */
export function snapshot(app: TestApp): Snapshot {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-content-"));
  const file = path.join(dir, "runledger.sqlite");
  app.db.$client.prepare("VACUUM INTO ?").run(file);
  fs.cpSync(path.join(app.dataDir, "artifacts"), path.join(dir, "artifacts"), { recursive: true });
  for (const f of fs.readdirSync(app.dataDir)) if (f.endsWith(".pub")) fs.copyFileSync(path.join(app.dataDir, f), path.join(dir, f));
  const db = new Database(file);
  db.pragma("foreign_keys = OFF");
  const maxSeq = (db.prepare("SELECT max(seq) AS n FROM audit_events").get() as { n: number }).n;
  return {
    dir,
    db,
    artifactsDir: path.join(dir, "artifacts"),
    maxSeq,
    close: () => {
      db.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function artifactPath(artifactsDir: string, sha256: string): string {
  return path.join(artifactsDir, sha256.slice(0, 2), sha256);
}
