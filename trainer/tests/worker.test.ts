/** The worker-thread path end to end: spawn through the tsx bootstrap, stream events, cancel, fail. */
import { describe, expect, it } from "vitest";
import { loadBuiltin } from "../data/builtin";
import { weightsSha256 } from "../checkpoint";
import { startTrainingWorker } from "../worker-client";
import { runJob } from "../run-job";
import type { TrainerEvent, TrainJob } from "../types";
import { config } from "./synthetic";
import { only, ofType } from "./collect";

const iris = loadBuiltin("iris");
const irisJob = (overrides: Parameters<typeof config>[0] = {}): TrainJob => ({
  config: config({ data: { normalization: "standard" }, ...overrides }),
  dataset: { bytes: iris.bytes, schema: iris.schema, sha256: iris.sha256 },
});

describe("[trainer/worker]", () => {
  it("runs a job in a worker thread and delivers every event, checkpoint bytes included", async () => {
    const events: TrainerEvent[] = [];
    const run = startTrainingWorker(irisJob({ training: { epochs: 3 } }), (e) => events.push(e));
    await run.done;
    expect(events.map((e) => e.type).slice(0, 2)).toEqual(["prepared", "started"]);
    expect(ofType(events, "epoch")).toHaveLength(3);
    const checkpoints = ofType(events, "checkpoint");
    expect(checkpoints).toHaveLength(3);
    for (const c of checkpoints) {
      expect(c.weights).toBeInstanceOf(Uint8Array);
      expect(weightsSha256(c.weights)).toBe(c.sha256);
    }
    expect(only(events, "finished")).toMatchObject({ status: "completed", weightsSha256: checkpoints.at(-1)!.sha256 });
    expect(events.at(-1)!.type).toBe("finished");

    // Same job in this process (another thread, same backend): bit-identical weights.
    const local: TrainerEvent[] = [];
    await runJob(irisJob({ training: { epochs: 3 } }), (e) => local.push(e), { cancelled: false });
    expect(only(local, "started").backend).toBe(only(events, "started").backend);
    expect(only(local, "finished").weightsSha256).toBe(only(events, "finished").weightsSha256);
  });

  it("cancels a running job within a batch", async () => {
    const events: TrainerEvent[] = [];
    let cancelAt: number | undefined;
    const run = startTrainingWorker(irisJob({ training: { epochs: 500, batchSize: 4 } }), (e) => {
      events.push(e);
      if (e.type === "batch" && cancelAt === undefined) {
        cancelAt = e.step;
        run.cancel();
      }
    });
    await run.done;
    const finished = only(events, "finished");
    expect(finished.status).toBe("cancelled");
    // The cancel message crosses threads while the next batch may already run: at most one more.
    expect(ofType(events, "batch").at(-1)!.step).toBeLessThanOrEqual(cancelAt! + 1);
    expect(ofType(events, "checkpoint").at(-1)!.sha256).toBe(finished.weightsSha256);
  });

  it("reports a bad layer stack as a failed event", async () => {
    const events: TrainerEvent[] = [];
    const run = startTrainingWorker(irisJob({ model: { layers: [{ type: "gru", units: 4 }] } }), (e) => events.push(e));
    await run.done;
    expect(only(events, "failed").message).toBe("model.layers.0 (gru) needs a sequence input; put an embedding layer before it");
  });
});
