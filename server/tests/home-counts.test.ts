/**
 * The home page's counts (projects.list: experiments per project, runs per experiment) against the database, through
 * a tRPC caller on a real database. Issue 14: an experiment with 3 runs was shown with 1, because the count's
 * subquery compared runs.experiment_id with runs.id. Run ids here differ from their experiment's id on purpose.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestApp, irisConfig, type TestApp } from "./test-app";

let app: TestApp;

async function launch(experimentId: number, seed: number) {
  const { id } = await app.as("engineer").runs.create({ experimentId, config: irisConfig({ epochs: 1, seed }), rationale: "count me" });
  await app.orchestrator.waitFor(id);
  return id;
}

/** Runs per experiment and experiments per project, counted by SQLite itself. */
function countsInDatabase() {
  const sqlite = app.db.$client;
  const runs = new Map(
    (
      sqlite
        .prepare("SELECT e.id AS id, COUNT(r.id) AS n FROM experiments e LEFT JOIN runs r ON r.experiment_id = e.id GROUP BY e.id")
        .all() as { id: number; n: number }[]
    ).map((r) => [r.id, r.n]),
  );
  const experiments = new Map(
    (
      sqlite
        .prepare("SELECT p.id AS id, COUNT(e.id) AS n FROM projects p LEFT JOIN experiments e ON e.project_id = p.id GROUP BY p.id")
        .all() as { id: number; n: number }[]
    ).map((r) => [r.id, r.n]),
  );
  return { runs, experiments, projects: experiments.size };
}

beforeAll(async () => {
  app = createTestApp();
  const engineer = app.as("engineer");
  const other = await engineer.projects.create({ name: "Counting project" });
  const three = await engineer.projects.createExperiment({ projectId: other.id, name: "three runs" });
  const one = await engineer.projects.createExperiment({ projectId: other.id, name: "one run" });
  await engineer.projects.createExperiment({ projectId: other.id, name: "no runs" });
  await launch(one.id, 1);
  for (const seed of [2, 3, 4]) await launch(three.id, seed);
}, 90_000);
afterAll(() => app.close());

describe("home page counts", () => {
  it("an experiment with 3 runs says 3 (not the runs whose id equals the experiment's)", async () => {
    const list = await app.as("reviewer").projects.list();
    const exps = Object.fromEntries(list.flatMap((p) => p.experiments).map((e) => [e.name, e.runCount]));
    expect(exps).toMatchObject({ "three runs": 3, "one run": 1, "no runs": 0 });
  });

  it("every count projects.list gives equals the database's, for every role", async () => {
    const db = countsInDatabase();
    for (const role of ["admin", "engineer", "reviewer", "auditor"] as const) {
      const list = await app.as(role).projects.list();
      expect(list).toHaveLength(db.projects);
      for (const p of list) {
        expect(p.experiments.length, `experiments of project ${p.name}`).toBe(db.experiments.get(p.id));
        for (const e of p.experiments) expect(e.runCount, `runs of experiment ${e.name}`).toBe(db.runs.get(e.id));
      }
    }
  });
});
