/**
 * Global search (tRPC search.global, server/search/queries.ts): finds projects, experiments, runs (by name, tag and
 * description), models, model versions and datasets; `%`, `_` and `\` match literally; each kind is bounded and says
 * when there are more; a too-long or empty query is refused with a clear message; every signed-in role may search,
 * anonymous callers may not; searching writes nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TRPCError } from "@trpc/server";
import { createTestApp, irisConfig, type TestApp } from "@/server/tests/test-app";
import { likeContains, SEARCH_MAX_QUERY_LENGTH } from "@/server/search/queries";
import { experimentTags, runTagValues } from "@/db/schema";

let app: TestApp;
let runId: number;
beforeAll(async () => {
  app = createTestApp();
  const eng = app.as("engineer");
  for (const name of ["srch a_b", "srch axb", "srch 100% sure", "srch 1000 sure", "srch back\\slash", "srch backxslash"])
    await eng.projects.create({ name });
  for (let i = 0; i < 8; i++) await eng.projects.createExperiment({ projectId: app.projectId, name: `bulk-exp-${i}` });
  runId = (
    await eng.runs.create({
      experimentId: app.experimentId,
      name: "search target run",
      config: irisConfig({ epochs: 1 }),
      rationale: "search test",
    })
  ).id;
  await app.orchestrator.waitFor(runId);
  await eng.runs.addTag({ runId, tag: "needle_tag" });
  await eng.runs.annotate({ runId, description: "a description with quokka inside" });
}, 90_000);
afterAll(() => app.close());

const titles = (r: Awaited<ReturnType<ReturnType<TestApp["as"]>["search"]["global"]>>, kind: string) =>
  r.groups.find((g) => g.kind === kind)!.hits.map((h) => h.title);

describe("search.global", () => {
  it("finds experiments and runs by a tracking-API tag as key=value", async () => {
    const at = new Date().toISOString();
    app.db.insert(experimentTags).values({ experimentId: app.experimentId, key: "team", value: "wombat-squad", updatedAt: at }).run();
    app.db.insert(runTagValues).values({ runId, key: "mlflow.source.name", value: "train_wombat.py", updatedAt: at }).run();
    const r = await app.as("reviewer").search.global({ q: "wombat" });
    const exp = r.groups.find((g) => g.kind === "experiment")!.hits;
    expect(exp.map((h) => [h.id, h.matched])).toEqual([[app.experimentId, "tag team=wombat-squad"]]);
    const run = r.groups.find((g) => g.kind === "run")!.hits;
    expect(run.map((h) => [h.id, h.matched])).toEqual([[runId, "tag mlflow.source.name=train_wombat.py"]]);
    // key=value is one string: "team=wombat" matches, "team=squad" does not.
    expect(titles(await app.as("reviewer").search.global({ q: "team=wombat" }), "experiment")).toHaveLength(1);
    expect(titles(await app.as("reviewer").search.global({ q: "team=squad" }), "experiment")).toHaveLength(0);
  });

  it("escapes LIKE wildcards: % _ and \\ match literally", async () => {
    const s = app.as("auditor").search.global;
    expect(titles(await s({ q: "a_b" }), "project")).toEqual(["srch a_b"]);
    expect(titles(await s({ q: "100%" }), "project")).toEqual(["srch 100% sure"]);
    expect(titles(await s({ q: "k\\s" }), "project")).toEqual(["srch back\\slash"]);
    expect(titles(await s({ q: "%" }), "project")).toEqual(["srch 100% sure"]);
    expect(titles(await s({ q: "_" }), "project")).toEqual(["srch a_b"]);
    expect(likeContains("5%_\\x")).toBe("%5\\%\\_\\\\x%");
  });

  it("finds a run by its name, its tag and its description, with a link to it", async () => {
    const s = app.as("reviewer").search.global;
    for (const [q, matched] of [
      ["target run", "name"],
      ["NEEDLE_t", "tag needle_tag"],
      ["quokka", "description"],
    ] as const) {
      const runs = (await s({ q })).groups.find((g) => g.kind === "run")!;
      expect(runs.hits).toEqual([expect.objectContaining({ id: runId, title: "search target run", matched, href: `/runs/${runId}` })]);
    }
  });

  it("finds models, model versions and datasets", async () => {
    await app.as("engineer").models.register({ runId, modelName: "srch-model" });
    const r = await app.as("auditor").search.global({ q: "srch-model" });
    expect(titles(r, "model")).toEqual(["srch-model"]);
    expect(r.groups.find((g) => g.kind === "modelVersion")!.hits).toEqual([
      expect.objectContaining({ title: "srch-model v1", href: "/models/srch-model/versions/1" }),
    ]);
    expect(titles(await app.as("auditor").search.global({ q: "iris" }), "dataset").length).toBeGreaterThan(0);
  });

  it("bounds each kind and says when there are more", async () => {
    const s = app.as("engineer").search.global;
    const few = (await s({ q: "bulk-exp" })).groups.find((g) => g.kind === "experiment")!;
    expect(few.hits).toHaveLength(5);
    expect(few.more).toBe(true);
    const all = (await s({ q: "bulk-exp", limit: 50 })).groups.find((g) => g.kind === "experiment")!;
    expect(all.hits).toHaveLength(8);
    expect(all.more).toBe(false);
    await expect(s({ q: "bulk", limit: 51 })).rejects.toMatchObject({ code: "BAD_REQUEST" });
  });

  it("refuses a too-long or empty query with a clear message", async () => {
    const s = app.as("engineer").search.global;
    await expect(s({ q: "x".repeat(SEARCH_MAX_QUERY_LENGTH + 1) })).rejects.toThrow(/at most 100 characters/);
    await expect(s({ q: "   " })).rejects.toThrow(/type something/);
    expect((await s({ q: "x".repeat(SEARCH_MAX_QUERY_LENGTH) })).total).toBe(0);
  });

  it("answers every signed-in role, refuses anonymous callers, and writes nothing", async () => {
    const before = app.db.$client.prepare("SELECT count(*) AS n FROM audit_events").get() as { n: number };
    for (const role of ["admin", "engineer", "reviewer", "auditor"] as const)
      expect(titles(await app.as(role).search.global({ q: "a_b" }), "project")).toEqual(["srch a_b"]);
    const err = await app.anonymous.search.global({ q: "a_b" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TRPCError);
    expect((err as TRPCError).code).toBe("UNAUTHORIZED");
    expect(app.db.$client.prepare("SELECT count(*) AS n FROM audit_events").get()).toEqual(before);
  });
});
