/**
 * Runs and piloting in the web app on PostgreSQL (issue 16), through the tRPC procedures as a request reaches them: the
 * app's own services (createPgAppServices on a scratch database: the store, the PostgreSQL artifact store, the
 * orchestrator training in-process on cpu) and createCaller. runs.create launches a run that trains to completion;
 * runs.estimate estimates a built-in dataset, the same dataset by id (its bytes only in PostgreSQL: the local directory
 * has no artifact files, so the handler reads them and sends them to the estimate worker) with the same answer, and a
 * fine-tune of the trained run's checkpoint (its weights in PostgreSQL), and refuses an unknown dataset or checkpoint;
 * runs.pilot.cancel withdraws a pending change (its event; a second withdrawal and a reviewer refused) and
 * runs.pilot.list shows the applied pause with its effect on the watched metric; runs.holder reads leases by their
 * heartbeat's age on the database clock (a live other process, a stale one, the workers' queue, a worker, none).
 * None of these answers "not available on the PostgreSQL store yet".
 */
import fs from "node:fs";
import path from "node:path";
import { expect, it } from "vitest";
import { and, eq } from "drizzle-orm";
import { exec, reader, rows, transact } from "@/db/store";
import type { AsyncArtifactStore } from "@/server/artifacts/async-store";
import { createCaller } from "@/server/trpc/root";
import { actorOf } from "@/server/users/service";
import { applyInterventionOn } from "@/server/runs/pilot";
import { leaseClockMs } from "@/server/runs/orchestrator/leases";
import { loadBuiltin } from "@/trainer/data/builtin";
import { artifactsRoot } from "@/contracts/artifact-layout";
import { describePg } from "./pg-test-env";
import { TEST_PEOPLE } from "./store-test-env";
import { usePgWebApp } from "./pg-web-app-fixture";
import { irisConfig } from "./test-app";

const AT = "2026-12-05T07:55:00.000Z";

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 120_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A tRPC error's code, or "ok". */
async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "ok";
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
}

describePg("runs and piloting through tRPC on PostgreSQL", () => {
  const web = usePgWebApp("runs-pilot-routes-pg", { at: AT, poolSize: 6 });
  const store = web.store;

  const callerAs = async (who: keyof typeof TEST_PEOPLE) => {
    const { users } = store().tables;
    const [user] = await reader(store()).select().from(users).where(eq(users.id, TEST_PEOPLE[who].id));
    return createCaller({ services: web.app(), user: actorOf(user!), sessionToken: undefined });
  };
  let experimentId = 0;
  let trainedRunId = 0;

  it("launches a run, estimates built-in, by-id and fine-tune configs from PostgreSQL's artifacts, refuses unknown ones", async () => {
    const engineer = await callerAs("engineer");
    const auditor = await callerAs("auditor");
    const project = await engineer.projects.create({ name: "Routed runs" });
    experimentId = (await engineer.projects.createExperiment({ projectId: project.id, name: "iris" })).id;
    const { id } = await engineer.runs.create({ experimentId, config: irisConfig({ epochs: 2 }), rationale: "a baseline on PostgreSQL" });
    trainedRunId = id;
    await until("the run's completion", async () => ((await auditor.runs.get({ id })).status === "completed" ? true : undefined));
    expect(await auditor.runs.holder({ id })).toBeNull();

    const builtin = await auditor.runs.estimate({ config: irisConfig() });
    expect(builtin.memory).toBeDefined();

    // The dataset by id: the built-in registered when the run was created, its bytes only in PostgreSQL (the local
    // directory holds no artifact files).
    const iris = loadBuiltin("iris");
    const { datasets, checkpoints } = store().tables;
    const [registered] = await reader(store()).select({ id: datasets.id }).from(datasets).where(eq(datasets.sha256, iris.sha256));
    expect(await (web.app().artifacts as AsyncArtifactStore).has(iris.sha256)).toBe(true);
    const byId = (datasetId: string) => {
      const c = irisConfig();
      return { ...c, data: { ...c.data, dataset: { datasetId } } };
    };
    const fromById = await auditor.runs.estimate({ config: byId(String(registered!.id)) });
    expect(fs.existsSync(artifactsRoot(path.join(web.dir(), "web")))).toBe(false);
    expect(fromById).toEqual(builtin);

    const [ck] = await reader(store()).select().from(checkpoints).where(eq(checkpoints.runId, id)).orderBy(checkpoints.epoch).limit(1);
    const fineTune = await auditor.runs.estimate({
      config: { ...irisConfig(), fineTune: { parentCheckpointId: String(ck!.id), freezeLayers: 1, replaceHead: false } },
    });
    expect(fineTune.fineTune).toMatchObject({ frozenLayers: expect.any(Array) });

    expect(await codeOf(auditor.runs.estimate({ config: byId("999") }))).toBe("NOT_FOUND");
    expect(await codeOf(auditor.runs.estimate({ config: byId("not-a-number") }))).toBe("NOT_FOUND");
    expect(
      await codeOf(
        auditor.runs.estimate({
          config: { ...irisConfig(), fineTune: { parentCheckpointId: "999", freezeLayers: 0, replaceHead: false } },
        }),
      ),
    ).toBe("BAD_REQUEST");
  }, 180_000);

  it("withdraws a pending change, lists the applied pause with its effect, and reads who holds a run", async () => {
    const engineer = await callerAs("engineer");
    const reviewer = await callerAs("reviewer");
    const auditor = await callerAs("auditor");
    const s = store();
    const { runs, checkpoints, metrics, runLeases, auditEvents, runInterventions } = s.tables;
    const read = reader(s);
    // A run "training" elsewhere: its row, checkpoints at epochs 1-3 and val_loss at epochs 1-5, written directly.
    const [source] = await read.select().from(runs).where(eq(runs.id, trainedRunId));
    const { runId, cks } = await transact(s, function* (tx) {
      const [run] = yield* rows(
        tx
          .insert(runs)
          .values({ ...source!, id: undefined, name: "training elsewhere", status: "running", finishedAt: null })
          .returning({ id: runs.id }),
      );
      const cks: number[] = [];
      for (const epoch of [1, 2, 3])
        cks.push(
          (yield* rows(
            tx
              .insert(checkpoints)
              .values({ runId: run!.id, epoch, step: epoch * 7, sha256: "c".repeat(64), bytes: 1, metricsJson: "{}", createdAt: AT })
              .returning({ id: checkpoints.id }),
          ))[0]!.id,
        );
      for (const epoch of [1, 2, 3, 4, 5])
        yield* exec(
          tx.insert(metrics).values({ runId: run!.id, key: "val_loss", step: epoch * 7, epoch, value: 1 / epoch, wallTimeMs: 0 }),
        );
      return { runId: run!.id, cks };
    });

    const change = await engineer.runs.pilot.request({ runId, kind: "set", set: { "training.learningRate": 0.01 }, rationale: "slower" });
    expect(await codeOf(reviewer.runs.pilot.cancel({ interventionId: change.id, rationale: "not mine" }))).toBe("FORBIDDEN");
    const withdrawn = await engineer.runs.pilot.cancel({ interventionId: change.id, rationale: "the rate is fine" });
    expect(withdrawn).toMatchObject({ id: change.id, status: "cancelled", closedBy: TEST_PEOPLE.engineer.id });
    expect(await codeOf(engineer.runs.pilot.cancel({ interventionId: change.id, rationale: "again" }))).toBe("CONFLICT");
    expect(await codeOf(engineer.runs.pilot.cancel({ interventionId: 99_999, rationale: "unknown" }))).toBe("NOT_FOUND");
    const [event] = await read
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.action, "run.interventionCancelled"), eq(auditEvents.entityId, String(change.id))));
    expect(JSON.parse(event!.payload)).toMatchObject({ runId, rationale: "the rate is fine" });

    const pause = await engineer.runs.pilot.request({ runId, kind: "pause", rationale: "look at the curves" });
    await applyInterventionOn({ db: s }, { interventionId: pause.id, epoch: 2, step: 14, checkpointId: cks[1]! });
    const listed = await auditor.runs.pilot.list({ runId });
    expect(listed.map((i) => [i.id, i.status])).toEqual([
      [change.id, "cancelled"],
      [pause.id, "applied"],
    ]);
    expect(listed[1]!.effect).toEqual({
      metric: "val_loss",
      before: { epoch: 2, value: 0.5 },
      after: [
        { epoch: 3, value: 1 / 3 },
        { epoch: 4, value: 0.25 },
        { epoch: 5, value: 0.2 },
      ],
      delta: 0.2 - 0.5,
    });
    const rowsOfRun = await read.select().from(runInterventions).where(eq(runInterventions.runId, runId)).orderBy(runInterventions.id);
    expect(rowsOfRun.map((r) => r.status)).toEqual(["cancelled", "applied"]);

    // Who holds it: leases written directly, their heartbeat on the database clock.
    const lease = async (owner: string, heartbeatAt: number) => {
      await transact(s, (tx) => exec(tx.delete(runLeases).where(eq(runLeases.runId, runId))));
      await transact(s, (tx) =>
        exec(tx.insert(runLeases).values({ runId, owner, host: "elsewhere", pid: 4242, acquiredAt: AT, heartbeatAt })),
      );
      return auditor.runs.holder({ id: runId });
    };
    expect(await auditor.runs.holder({ id: runId })).toBeNull();
    const now = await leaseClockMs(s);
    expect(await lease("elsewhere:4242:abc", now)).toMatchObject({ kind: "process", host: "elsewhere", pid: 4242, alive: true });
    expect(await lease("elsewhere:4242:abc", now - 10 * 60_000)).toMatchObject({ kind: "process", alive: false });
    expect(await lease("worker:elsewhere:4242:abc", now)).toMatchObject({ kind: "worker", alive: true });
    expect(await lease("queue:7", now - 10 * 60_000)).toMatchObject({ kind: "queue", host: null, pid: null, alive: true });
    await transact(s, (tx) => exec(tx.delete(runLeases).where(eq(runLeases.runId, runId))));
  }, 120_000);
});
