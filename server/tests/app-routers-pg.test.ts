/**
 * The web app on PostgreSQL (issue 16) through its tRPC procedures, as a request reaches them: the app's own services
 * (createPgAppServices on a scratch database: the store, the PostgreSQL artifact store, the orchestrator training
 * in-process on cpu) and createCaller. Sweeps: created (the driver starts in the background), read until completed,
 * the winner chosen, the run page's ofRun, extended (driven again to the new budget), and a long one stopped with its
 * active trial cancelled; global search finds the trials; administrators see the demo accounts still on their public
 * password (auth.me, users.list), others do not; the explorer lists and compares the trials. None of these answers
 * "not available on the PostgreSQL store yet".
 */
import { expect, it } from "vitest";
import { exec, transact } from "@/db/store";
import type { SweepSpecInput } from "@/contracts/sweep-spec";
import { DEMO_USERS } from "@/server/auth/demo-users";
import { describePg } from "./pg-test-env";
import { TEST_PEOPLE } from "./store-test-env";
import { usePgWebApp } from "./pg-web-app-fixture";
import { irisConfig } from "./test-app";

const AT = "2026-12-05T07:45:00.000Z";

const spec = (over: Partial<SweepSpecInput> = {}): SweepSpecInput => ({
  name: "routed",
  base: irisConfig({ epochs: 2 }),
  space: { "training.learningRate": { type: "choice", values: [0.05, 0.02, 0.01] } },
  method: "grid",
  budget: { maxTrials: 2, maxParallel: 2 },
  metric: { name: "val_loss", direction: "minimize" },
  seed: 4,
  rationale: "sweeps through the web app on PostgreSQL",
  ...over,
});

/** Polls `probe` until it returns a value (every 100 ms, at most `ms`), naming `what` on a timeout. */
async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 120_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describePg("sweeps, global search, the demo-password warning and the explorer through tRPC on PostgreSQL", () => {
  const { callerAs } = usePgWebApp("app-routers-pg", {
    at: AT,
    poolSize: 6,
    setup: async (store) => {
      const admin = DEMO_USERS[0]!;
      await transact(store, function* (tx) {
        yield* exec(
          tx
            .insert(store.tables.users)
            .values({ id: 10, email: admin.email, name: admin.name, role: admin.role, passwordHash: admin.passwordHash, createdAt: AT }),
        );
      });
    },
  });

  it("drives a sweep to completion, chooses its winner, extends it, stops another; finds, warns and compares", async () => {
    const engineer = await callerAs(TEST_PEOPLE.engineer.email);
    const auditor = await callerAs(TEST_PEOPLE.auditor.email);
    const admin = await callerAs(DEMO_USERS[0]!.email);
    const project = await engineer.projects.create({ name: "Routed sweeps" });
    const experiment = await engineer.projects.createExperiment({ projectId: project.id, name: "iris" });

    const { id } = await engineer.sweeps.create({ experimentId: experiment.id, spec: spec() });
    const done = await until("the sweep's completion", async () => {
      const s = await auditor.sweeps.get({ id });
      return s.status === "completed" ? s : undefined;
    });
    expect(done.trials.map((t) => [t.trialIndex, t.status, t.params])).toEqual([
      [0, "completed", { "training.learningRate": 0.05 }],
      [1, "completed", { "training.learningRate": 0.02 }],
    ]);
    const best = done.best!;
    expect(await engineer.sweeps.chooseWinner({ sweepId: id, runId: best.runId, rationale: "lowest val loss" })).toMatchObject({
      runId: best.runId,
      trials: 2,
    });
    expect(await auditor.sweeps.ofRun({ runId: best.runId })).toMatchObject({
      sweepId: id,
      sweepName: "routed",
      trials: 2,
      chosen: { by: TEST_PEOPLE.engineer.name, rationale: "lowest val loss" },
    });
    expect((await auditor.sweeps.list({ experimentId: experiment.id })).map((s) => s.id)).toEqual([id]);

    // Extended: the driver starts again on this server and creates the third grid point.
    expect(await engineer.sweeps.extend({ sweepId: id, addTrials: 1, rationale: "the last grid point" })).toMatchObject({
      maxTrials: 3,
      status: "running",
    });
    const extended = await until("the extended sweep's completion", async () => {
      const s = await auditor.sweeps.get({ id });
      return s.status === "completed" ? s : undefined;
    });
    expect(extended.trials.map((t) => [t.trialIndex, t.status])).toEqual([
      [0, "completed"],
      [1, "completed"],
      [2, "completed"],
    ]);

    // A long sweep stopped while its trial trains: the stop lists it and the orchestrator cancels it.
    const long = await engineer.sweeps.create({
      experimentId: experiment.id,
      spec: spec({ name: "long", base: irisConfig({ epochs: 500 }), budget: { maxTrials: 1, maxParallel: 1 } }),
    });
    const trial = await until("the long sweep's trial to train", async () => {
      const s = await auditor.sweeps.get({ id: long.id });
      return s.trials[0]?.status === "running" ? s.trials[0] : undefined;
    });
    const stopped = await engineer.sweeps.stop({ sweepId: long.id, rationale: "enough" });
    expect(stopped).toEqual({ id: long.id, status: "stopped", cancelledTrialRunIds: [trial.runId] });
    await until("the stopped trial's cancellation", async () => {
      const s = await auditor.sweeps.get({ id: long.id });
      return s.trials[0]?.status === "cancelled" ? true : undefined;
    });

    // Global search finds the trials by name (the sweep names them), for any role.
    const found = await auditor.search.global({ q: "routed · trial", limit: 10 });
    expect(found.groups.find((g) => g.kind === "run")!.hits.map((h) => h.title)).toEqual([
      "routed · trial 3",
      "routed · trial 2",
      "routed · trial 1",
    ]);
    expect((await auditor.search.global({ q: "ROUTED SWEEPS" })).groups.find((g) => g.kind === "project")!.hits).toEqual([
      { kind: "project", id: project.id, title: "Routed sweeps", context: "", matched: "name", href: `/#project-${project.id}` },
    ]);

    // The demo-password warning: the administrator's own demo account is still on its public password.
    expect((await admin.auth.me())!.demoPasswordsInUse).toEqual([DEMO_USERS[0]!.email]);
    expect((await admin.users.list()).demoPasswordsInUse).toEqual([DEMO_USERS[0]!.email]);
    expect((await engineer.auth.me())!.demoPasswordsInUse).toEqual([]);

    // The explorer on the app's store.
    const listed = await auditor.explore.search({ experimentId: experiment.id });
    expect(listed.total).toBe(4);
    const trialIds = extended.trials.map((t) => t.runId);
    const compared = await auditor.explore.compare({ ids: trialIds });
    expect(compared.runs.map((r) => r.id)).toEqual(trialIds);
  }, 300_000);
});
