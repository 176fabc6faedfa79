/**
 * "Production at time T" (models.aliasAt) through tRPC callers on a real database: without a time it answers now by
 * the server's clock, so right after an approval it names the new version (issue 14: a page kept its load time and
 * answered v1 while production was v2); at the exact time of each alias move it names the version moved to, and just
 * before it the previous one.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestApp, irisConfig, type TestApp } from "./test-app";

let app: TestApp;
const MODEL = "time-model";

async function promote(seed: number) {
  const { id } = await app
    .as("engineer")
    .runs.create({ experimentId: app.experimentId, config: irisConfig({ epochs: 2, seed }), rationale: "time travel" });
  await app.orchestrator.waitFor(id);
  const v = await app.as("engineer").models.register({ runId: id, modelName: MODEL });
  const req = await app.as("engineer").models.requestPromotion({
    modelName: MODEL,
    version: v.version,
    acknowledgeMissingDocumentation: true,
    rationale: `v${v.version} is better`,
  });
  return { version: v.version, requestId: req.id };
}
const approve = (requestId: number) => app.as("reviewer2").models.sign({ requestId, meaning: "approval", password: "reviewer2-demo-pass" });
const now = () => app.as("auditor").models.aliasAt({ modelName: MODEL });

beforeAll(() => {
  app = createTestApp();
});
afterAll(() => app.close());

describe("production now and at time T", () => {
  it("without a time, answers now: nothing before any approval, then each newly approved version at once", async () => {
    const first = await promote(1);
    const second = await promote(2);
    expect(await now()).toMatchObject({ alias: "production", version: null, since: null });

    const pageLoad = new Date().toISOString();
    await approve(first.requestId);
    expect(await now()).toMatchObject({ version: first.version, promotionRequestId: first.requestId });
    await approve(second.requestId);
    const answer = await now();
    expect(answer).toMatchObject({ version: second.version, promotionRequestId: second.requestId, movedBy: "Rita Second-Reviewer" });
    expect(Date.parse(answer.at)).toBeGreaterThanOrEqual(Date.parse(answer.since!));
    // The old behaviour: a time fixed at page load answers what production was then.
    expect((await app.as("auditor").models.aliasAt({ modelName: MODEL, at: pageLoad })).version).toBeNull();
  }, 60_000);

  it("at the exact time of each alias move answers the version it moved to, and just before it the previous one", async () => {
    const timeline = await app.as("auditor").models.aliasTimeline({ modelName: MODEL });
    expect(timeline).toHaveLength(2);
    let previous: number | null = null;
    for (const move of timeline) {
      expect((await app.as("auditor").models.aliasAt({ modelName: MODEL, at: move.at })).version).toBe(move.version);
      const before = new Date(Date.parse(move.at) - 1).toISOString();
      if (before > (timeline[timeline.indexOf(move) - 1]?.at ?? ""))
        expect((await app.as("auditor").models.aliasAt({ modelName: MODEL, at: before })).version).toBe(previous);
      previous = move.version;
    }
    await expect(app.as("auditor").models.aliasAt({ modelName: MODEL, at: "not a time" })).rejects.toThrow(/not a time/);
  });
});
