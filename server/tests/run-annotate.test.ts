/**
 * Renaming and describing a run after launch (server/runs/annotate.ts, tRPC runs.annotate): who may, what is
 * refused, one run.annotate event per changed field with from/to, the config untouched, tags through the existing
 * verbs; the content check stays clean after edits and still finds a name or description edited in SQL without
 * its event (also after a rename, and a rename's event with its row edited back).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TRPCError } from "@trpc/server";
import { checkContent } from "@/server/audit/content/verify-content";
import { snapshot } from "@/server/audit/content/tests/content-fixture";
import { createTestApp, irisConfig, type TestApp } from "@/server/tests/test-app";

let app: TestApp;
let runId: number;
beforeAll(async () => {
  app = createTestApp();
  runId = (
    await app.as("engineer").runs.create({
      experimentId: app.experimentId,
      name: "run 2",
      config: irisConfig({ epochs: 1 }),
      rationale: "annotate test",
    })
  ).id;
  await app.orchestrator.waitFor(runId);
}, 90_000);
afterAll(() => app.close());

const code = (p: Promise<unknown>) =>
  p.then(
    () => "ok",
    (e: unknown) => (e instanceof TRPCError ? e.code : String(e)),
  );
const row = () =>
  app.db.$client.prepare("SELECT name, description, config_json, config_sha256 FROM runs WHERE id = ?").get(runId) as {
    name: string;
    description: string;
    config_json: string;
    config_sha256: string;
  };
const annotateEvents = () =>
  (
    app.db.$client
      .prepare("SELECT actor_id, payload FROM audit_events WHERE action = 'run.annotate' AND entity_id = ? ORDER BY seq")
      .all(String(runId)) as { payload: string }[]
  ).map((r) => JSON.parse(r.payload) as Record<string, unknown>);

/** The content check on a copy of the database, after an optional tamper. */
function content(tamper?: (db: import("better-sqlite3").Database) => void) {
  const s = snapshot(app);
  try {
    tamper?.(s.db);
    return checkContent(s.db, { artifactsDir: s.artifactsDir, uptoSeq: s.maxSeq }).level;
  } finally {
    s.close();
  }
}

describe("runs.annotate", () => {
  it("only engineers may rename or describe; others are refused and nothing is written", async () => {
    for (const role of ["reviewer", "auditor", "admin"] as const)
      expect(await code(app.as(role).runs.annotate({ runId, name: "x" }))).toBe("FORBIDDEN");
    expect(await code(app.anonymous.runs.annotate({ runId, name: "x" }))).toBe("UNAUTHORIZED");
    expect(row().name).toBe("run 2");
    expect(annotateEvents()).toEqual([]);
  });

  it("validates: empty or multi-line names, nothing to change, unknown run", async () => {
    const engineer = app.as("engineer");
    expect(await code(engineer.runs.annotate({ runId, name: "   " }))).toBe("BAD_REQUEST");
    expect(await code(engineer.runs.annotate({ runId, name: "a\nb" }))).toBe("BAD_REQUEST");
    expect(await code(engineer.runs.annotate({ runId, name: "x".repeat(121) }))).toBe("BAD_REQUEST");
    expect(await code(engineer.runs.annotate({ runId }))).toBe("BAD_REQUEST");
    expect(await code(engineer.runs.annotate({ runId: 999_999, name: "x" }))).toBe("NOT_FOUND");
    expect(annotateEvents()).toEqual([]);
  });

  it("renames and describes in one transaction, one event per changed field, config untouched; the content check is clean", async () => {
    const before = row();
    const r = await app.as("engineer").runs.annotate({ runId, name: "  iris baseline  ", description: "Baseline for the lr sweep." });
    expect(r.changed).toEqual(["name", "description"]);
    expect(row()).toEqual({ ...before, name: "iris baseline", description: "Baseline for the lr sweep." });
    expect(annotateEvents()).toEqual([
      { field: "name", from: "run 2", to: "iris baseline" },
      { field: "description", from: "", to: "Baseline for the lr sweep." },
    ]);
    // Same value again: no event.
    expect((await app.as("engineer").runs.annotate({ runId, name: "iris baseline" })).changed).toEqual([]);
    await app.as("engineer").runs.annotate({ runId, name: "iris baseline v2" });
    await app.as("engineer").runs.addTag({ runId, tag: "baseline" });
    expect(annotateEvents()).toHaveLength(3);
    const level = content();
    expect(level.problems).toEqual([]);
    expect(level.ok).toBe(true);
  });

  it("a name or description edited in SQL without its event is found", () => {
    const name = content((db) => db.prepare("UPDATE runs SET name = 'renamed quietly' WHERE id = ?").run(runId));
    expect(name.ok).toBe(false);
    const hit = name.problems.find(
      (p) => p.entityType === "run" && p.entityId === String(runId) && p.field === "run name (latest run.annotate)",
    );
    expect(hit?.recorded).toBe(JSON.stringify("iris baseline v2"));
    expect(hit?.found).toBe(JSON.stringify("renamed quietly"));
    const description = content((db) => db.prepare("UPDATE runs SET description = 'edited' WHERE id = ?").run(runId));
    expect(description.problems.some((p) => p.entityId === String(runId) && p.field === "run description")).toBe(true);
  });

  it("a run never annotated: a name edited in SQL is judged against run.create", async () => {
    const other = (
      await app
        .as("engineer")
        .runs.create({ experimentId: app.experimentId, name: "run 3", config: irisConfig({ epochs: 1 }), rationale: "t" })
    ).id;
    await app.orchestrator.waitFor(other);
    const level = content((db) => db.prepare("UPDATE runs SET name = 'run 3b' WHERE id = ?").run(other));
    expect(level.problems.some((p) => p.entityId === String(other) && p.field === "run name")).toBe(true);
  }, 60_000);
});
