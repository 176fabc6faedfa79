/**
 * Benchmark of live piloting on a real small run (Iris, in a worker thread, throw-away data and key directories).
 *
 * pilot_apply_latency_ms: the server-side cost of an intervention, from request to taking effect, minus the wait
 * for the epoch boundary. It is the request's transaction (requestIntervention, timed around the call) plus the
 * boundary handling: from the end of the epoch (the epoch metric's wall time, stamped by the trainer as the epoch
 * ends, just before it reports the boundary) until the intervention is applied (appliedAt, stamped inside the
 * applying transaction): the boundary event reaching the main thread, the pending interventions read and answered,
 * the trainer applying the change and writing that boundary's checkpoint with its resume state, the resume state
 * stored (fsync), the checkpoint recorded and the intervention applied with its decision and ledger event. Median of
 * REPS learning-rate changes, each requested after the previous one took effect (appliedAt has millisecond grain).
 *
 * Run alone: npx tsx bench/pilot.ts
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { and, eq } from "drizzle-orm";
import { metrics, runInterventions, runs, users } from "@/db/schema";
import { createAppServices } from "@/server/app-context/app-services";
import { DEMO_USERS, ensureDemoUsersAndProject } from "@/server/demo/seed";
import { createRun } from "@/server/runs/service";
import { requestIntervention } from "@/server/runs/pilot";
import { actorOf } from "@/server/users/service";
import { median, printFigure, type Figure } from "./figures";

const REPS = 15;

export async function benchPilotApplyLatency(): Promise<Figure[]> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-bench-pilot-"));
  const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-bench-pilot-keys-"));
  const services = createAppServices(dataDir, { keyDir });
  try {
    const seed = ensureDemoUsersAndProject(services);
    const email = DEMO_USERS.find((u) => u.role === "engineer")!.email;
    const ctx = { ...services, actor: actorOf(services.db.select().from(users).where(eq(users.email, email)).get()!) };
    // Long enough to take REPS interventions; checkpoints only where a decision takes effect (and at the end).
    const run = createRun(ctx, {
      experimentId: seed.experimentId,
      rationale: "pilot latency benchmark",
      config: {
        data: { dataset: { builtin: "iris" }, normalization: "standard" },
        model: { layers: [{ type: "dense", units: 12, activation: "relu" }] },
        training: { optimizer: { name: "adam" }, learningRate: 0.03, batchSize: 16, epochs: 2000, seed: 1, checkpointEvery: 10_000 },
      },
    });
    await services.orchestrator.launch(run.id);
    const waitFor = async (what: () => boolean, label: string) => {
      for (let i = 0; i < 6000; i++) {
        if (what()) return;
        await new Promise((r) => setTimeout(r, 5));
      }
      throw new Error(`bench pilot: timed out waiting for ${label}`);
    };
    await waitFor(
      () => services.db.select({ s: runs.status }).from(runs).where(eq(runs.id, run.id)).get()?.s === "running",
      "the run to start",
    );

    const requestMs: number[] = [];
    const boundaryMs: number[] = [];
    const totalMs: number[] = [];
    for (let i = 0; i < REPS; i++) {
      const t0 = performance.now();
      const req = requestIntervention(ctx, {
        runId: run.id,
        kind: "set",
        set: { "training.learningRate": i % 2 === 0 ? 0.01 : 0.02 },
        rationale: `benchmark change ${i + 1}`,
      });
      const request = performance.now() - t0;
      const row = () => services.db.select().from(runInterventions).where(eq(runInterventions.id, req.id)).get()!;
      await waitFor(() => row().status !== "pending", `intervention ${req.id}`);
      const applied = row();
      if (applied.status !== "applied")
        throw new Error(`bench pilot: intervention ${req.id} was ${applied.status}: ${applied.closeReason}`);
      const epochEnd = services.db
        .select({ wallTimeMs: metrics.wallTimeMs })
        .from(metrics)
        .where(and(eq(metrics.runId, run.id), eq(metrics.key, "lr"), eq(metrics.epoch, applied.appliedAtEpoch!)))
        .get()!.wallTimeMs;
      const boundary = Date.parse(applied.appliedAt!) - epochEnd;
      requestMs.push(request);
      boundaryMs.push(boundary);
      totalMs.push(request + boundary);
    }
    requestIntervention(ctx, { runId: run.id, kind: "stop", rationale: "benchmark done" });
    await services.orchestrator.waitFor(run.id);
    const round = (x: number) => Math.round(x * 10) / 10;
    process.stdout.write(
      `(pilot: ${REPS} learning-rate changes; request tx median ${round(median(requestMs))} ms, boundary handling median ${round(median(boundaryMs))} ms; load ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(" ")})\n`,
    );
    return [
      {
        name: "pilot_apply_latency_ms",
        value: round(median(totalMs)),
        unit: "ms",
        target: "< 250 ms, excluding the wait for the epoch boundary",
      },
      {
        name: "pilot_request_ms",
        value: round(median(requestMs)),
        unit: "ms",
        target: "informational: the request part of pilot_apply_latency_ms",
      },
    ];
  } finally {
    services.db.$client.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
    fs.rmSync(keyDir, { recursive: true, force: true });
  }
}

/** The `pilot` part of `npm run bench`. */
export async function benchPilot(): Promise<Figure[]> {
  // resume_overhead_s (crash recovery, bench/resume.ts) belongs to the same issue and runs in the same part.
  return [...(await benchPilotApplyLatency()), ...(await (await import("./resume")).benchResumeOverhead())];
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  benchPilot().then((figures) => {
    for (const f of figures) printFigure(f);
    process.exit(0);
  });
}
