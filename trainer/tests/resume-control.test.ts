/**
 * Exact resume and epoch-boundary control (issue 13, trainer side): a run resumed from a checkpoint's state ends
 * with the uninterrupted run's weights hash and metric points; controls change settings from the next epoch,
 * pause, stop, extend; invalid controls change nothing; planned controls reproduce a live-piloted run, in
 * process and through the worker protocol. Real tfjs (cpu backend), tiny synthetic data and Iris.
 */
import { describe, expect, it } from "vitest";
import { loadBuiltin } from "../data/builtin";
import { startTrainingWorker } from "../worker-client";
import { runJob } from "../run-job";
import { train } from "../fit";
import { deserializeWeights } from "../checkpoint";
import type { CancelSignal, EpochBoundary, EpochControl, TrainerEvent, TrainJob } from "../types";
import type { TrainingConfigInput } from "../../contracts/training-config";
import { blobs, config, job } from "./synthetic";
import { only, ofType, type Events } from "./collect";

const data = blobs();

const dropoutModel = {
  layers: [
    { type: "dense" as const, units: 12 },
    { type: "dropout" as const, rate: 0.3 },
    { type: "dense" as const, units: 8, activation: "tanh" as const },
  ],
};
const cfg = (training: Partial<TrainingConfigInput["training"]> = {}) =>
  config({ model: dropoutModel, training: { epochs: 6, ...training } });

async function run(
  j: TrainJob,
  options: { control?: (b: EpochBoundary) => EpochControl; cancelAfterEpoch?: number } = {},
): Promise<Events> {
  const events: Events = [];
  const signal: { cancelled: boolean } = { cancelled: false };
  await train(
    j,
    data,
    (e) => {
      events.push(e);
      if (e.type === "epoch" && e.epoch === options.cancelAfterEpoch) signal.cancelled = true;
    },
    signal as CancelSignal,
    options.control ? (b) => Promise.resolve(options.control!(b)) : undefined,
  );
  return events;
}

/** Epoch points without the wall-clock fields, for exact comparison. */
const points = (events: Events) => ofType(events, "epoch").map(({ epoch, step, metrics }) => ({ epoch, step, metrics }));
const stateAt = (events: Events, epoch: number) => {
  const c = ofType(events, "checkpoint").find((x) => x.epoch === epoch)!;
  expect(c.state).toBeInstanceOf(Uint8Array);
  return { state: c.state!, sha256: c.stateSha256! };
};

describe("[trainer/resume] exact resume", () => {
  for (const optimizer of [{ name: "adam" as const }, { name: "rmsprop" as const, momentum: 0.5 }, { name: "momentum" as const }]) {
    it(`resumed from the epoch-3 state equals the uninterrupted run (${optimizer.name}, dropout)`, async () => {
      const c = cfg({ optimizer, learningRate: optimizer.name === "adam" ? 0.05 : 0.02 });
      const plain = await run(job(c));
      const whole = await run(job(c, { resumable: true }));
      // The state rides along; the checkpoint's own weights and hash do not change.
      expect(ofType(whole, "checkpoint").map((x) => x.sha256)).toEqual(ofType(plain, "checkpoint").map((x) => x.sha256));
      expect(only(whole, "finished").weightsSha256).toBe(only(plain, "finished").weightsSha256);

      const interrupted = await run(job(c, { resumable: true }), { cancelAfterEpoch: 3 });
      expect(only(interrupted, "finished")).toMatchObject({ status: "cancelled", epochsRun: 3 });
      const resumed = await run(job(c, { resumable: true, resume: stateAt(interrupted, 3) }));
      expect(only(resumed, "started").resumedFrom).toMatchObject({ epoch: 3, step: 18 });
      expect(only(resumed, "finished")).toMatchObject({
        status: "completed",
        epochsRun: 6,
        weightsSha256: only(whole, "finished").weightsSha256,
      });
      // The metric points of the resumed part are the uninterrupted run's from epoch 4 on: none twice, none missing.
      expect(points(resumed)).toEqual(points(whole).slice(3));
      expect(ofType(resumed, "batch").map((b) => b.step)).toEqual(
        ofType(whole, "batch")
          .map((b) => b.step)
          .slice(18),
      );
      expect(ofType(resumed, "checkpoint").map((x) => [x.epoch, x.sha256, x.stateSha256, x.isBest])).toEqual(
        ofType(whole, "checkpoint")
          .slice(3)
          .map((x) => [x.epoch, x.sha256, x.stateSha256, x.isBest]),
      );
      expect(only(resumed, "evaluation")).toEqual(only(whole, "evaluation"));
    });
  }

  it("refuses a state whose hash or config does not fit, with a clear message", async () => {
    const c = cfg({ epochs: 2 });
    const first = await run(job(c, { resumable: true }));
    const s = stateAt(first, 1);
    const altered = await run(job(c, { resume: { state: s.state, sha256: "0".repeat(64) } }));
    expect(only(altered, "failed").message).toMatch(/^the resume state's SHA-256 is [0-9a-f]{64}, expected 0{64}/);
    const otherBatch = await run(job(cfg({ epochs: 2, batchSize: 8 }), { resume: s }));
    expect(only(otherBatch, "failed").message).toBe("the resume state does not fit this config: training.batchSize was 16, is 8");
    const otherModel = await run(job(config({ training: { epochs: 2 } }), { resume: s }));
    expect(only(otherModel, "failed").message).toMatch(/^the resume state does not fit this config's model: /);
  });
});

describe("[trainer/control] epoch-boundary control", () => {
  it("changes the learning rate from the next epoch and reports the settings at each epoch", async () => {
    const plain = await run(job(cfg()), { control: () => ({}) });
    const lowered = await run(job(cfg()), { control: (b) => (b.epoch === 2 ? { apply: { learningRate: 0.005 } } : {}) });
    const epochs = ofType(lowered, "epoch");
    expect(epochs.map((e) => e.metrics.lr)).toEqual([0.05, 0.05, 0.005, 0.005, 0.005, 0.005]);
    expect(epochs.map((e) => e.settings?.learningRate)).toEqual([0.05, 0.05, 0.005, 0.005, 0.005, 0.005]);
    expect(epochs[2]!.settings?.lrScheduleFromEpoch).toBe(3);
    // Same curve up to the change, a different one after it.
    expect(points(lowered).slice(0, 2)).toEqual(points(plain).slice(0, 2));
    expect(epochs[2]!.metrics.loss).not.toBe(ofType(plain, "epoch")[2]!.metrics.loss);
    expect(only(lowered, "finished").weightsSha256).not.toBe(only(plain, "finished").weightsSha256);
    // A control that changes nothing leaves the weights of an unpiloted run.
    expect(only(plain, "finished").weightsSha256).toBe(only(await run(job(cfg())), "finished").weightsSha256);
    expect(ofType(await run(job(cfg())), "epoch")[0]!.settings).toBeUndefined();
  });

  it("pause then resume equals the run that continued with the same control", async () => {
    const lower = { learningRate: 0.01, lrSchedule: { type: "step" as const, everyEpochs: 2, factor: 0.5 } };
    const continued = await run(job(cfg({ checkpointEvery: 4 })), { control: (b) => (b.epoch === 2 ? { apply: lower } : {}) });
    const paused = await run(job(cfg({ checkpointEvery: 4 }), { resumable: true }), {
      control: (b) => (b.epoch === 2 ? { apply: lower, then: "pause" } : {}),
    });
    expect(only(paused, "finished")).toMatchObject({ status: "paused", epochsRun: 2 });
    expect(ofType(paused, "evaluation")).toHaveLength(0);
    // The pause wrote a checkpoint at its boundary although the cadence (4) did not ask for one.
    expect(ofType(paused, "checkpoint").map((c) => c.epoch)).toEqual([2]);
    const resumed = await run(job(cfg({ checkpointEvery: 4 }), { resume: stateAt(paused, 2) }));
    expect(ofType(resumed, "epoch").map((e) => e.metrics.lr)).toEqual([0.01, 0.01, 0.005, 0.005]);
    expect(only(resumed, "finished").weightsSha256).toBe(only(continued, "finished").weightsSha256);
    expect(points(resumed)).toEqual(points(continued).slice(2));
  });

  it("stops by decision: completed, checkpointed and evaluated at that boundary", async () => {
    const events = await run(job(cfg({ checkpointEvery: 5 })), { control: (b) => (b.epoch === 2 ? { then: "stop" } : {}) });
    expect(only(events, "finished")).toMatchObject({ status: "completed", epochsRun: 2, stoppedByDecision: true, stoppedEarly: false });
    expect(ofType(events, "checkpoint").map((c) => c.epoch)).toEqual([2]);
    expect(only(events, "evaluation").epoch).toBe(2);
    expect(only(await run(job(cfg({ epochs: 2 }))), "finished").stoppedByDecision).toBeUndefined();
  });

  it("extends and shortens the epochs, never below the epochs already run", async () => {
    const extended = await run(job(cfg({ epochs: 3 })), { control: (b) => (b.epoch === 3 ? { apply: { epochs: 5 } } : {}) });
    expect(ofType(extended, "epoch").map((e) => e.epoch)).toEqual([1, 2, 3, 4, 5]);
    expect(only(extended, "finished")).toMatchObject({ status: "completed", epochsRun: 5 });
    const shortened = await run(job(cfg({ epochs: 6, checkpointEvery: 4 })), {
      control: (b) => (b.epoch === 2 ? { apply: { epochs: 2, checkpointEvery: 1 } } : {}),
    });
    expect(only(shortened, "finished")).toMatchObject({ status: "completed", epochsRun: 2 });
    expect(ofType(shortened, "checkpoint").map((c) => c.epoch)).toEqual([2]);
  });

  it("rejects an invalid control with a clear message, changes nothing and asks again", async () => {
    const answers: EpochControl[] = [
      { apply: { learningRate: -1 } },
      { apply: { epochs: 1 } },
      { apply: { earlyStopping: { metric: "val_f1", mode: "max", patience: 2, minDelta: 0 } } },
      { apply: { classWeights: { dog: 2 } } },
      { apply: { learningRate: 0.01, colour: "red" } } as unknown as EpochControl,
      { then: "continue" },
    ];
    const asked: EpochBoundary[] = [];
    const events = await run(job(cfg({ epochs: 3 })), {
      control: (b) => {
        asked.push(b);
        return b.epoch === 2 ? answers.shift()! : {};
      },
    });
    expect(ofType(events, "controlRejected").map((r) => [r.epoch, r.message])).toEqual([
      [2, "apply.learningRate: learningRate must be > 0"],
      [2, "apply.epochs: 1 is below the 2 epochs already run"],
      [2, 'apply.earlyStopping.metric: unknown metric "val_f1"; choose one of loss, accuracy, lr, val_loss, val_accuracy'],
      [2, 'apply.classWeights: unknown class "dog"; classes are a, b, c'],
      [2, 'apply: Unrecognized key: "colour"'],
    ]);
    expect(asked.filter((b) => b.epoch === 2).map((b) => b.settings)).toEqual(Array(6).fill(asked[1]!.settings));
    expect(only(events, "finished").weightsSha256).toBe(only(await run(job(cfg({ epochs: 3 }))), "finished").weightsSha256);
  });

  it("planned controls reproduce the weights of the same controls piloted live", async () => {
    const live = await run(job(cfg()), {
      control: (b) =>
        b.epoch === 1
          ? { apply: { learningRate: 0.02, classWeights: "balanced" } }
          : b.epoch === 3
            ? { apply: { epochs: 5, earlyStopping: { metric: "val_loss", mode: "min", patience: 3, minDelta: 0 } } }
            : {},
    });
    const planned = await run(
      job(cfg(), {
        plannedControls: [
          { epoch: 1, apply: { learningRate: 0.02, classWeights: "balanced" } },
          { epoch: 3, apply: { epochs: 5, earlyStopping: { metric: "val_loss", mode: "min", patience: 3, minDelta: 0 } } },
        ],
      }),
    );
    expect(only(planned, "finished")).toMatchObject({ epochsRun: 5, weightsSha256: only(live, "finished").weightsSha256 });
    expect(points(planned)).toEqual(points(live));
    expect(ofType(planned, "epoch").map((e) => e.settings)).toEqual(ofType(live, "epoch").map((e) => e.settings));
  });
});

describe("[trainer/control] freezing layers of a fine-tune", () => {
  const parentLayers = dropoutModel.layers;
  const child = (epochs: number) =>
    config({
      model: dropoutModel,
      training: { epochs, seed: 99 },
      fineTune: { parentCheckpointId: "c", freezeLayers: 2, replaceHead: false },
    });

  it("unfreezes from the next epoch, keeps the optimizer state, replays and resumes exactly", async () => {
    const parentRun = await run(job(config({ model: { layers: parentLayers }, training: { epochs: 2 } })));
    const last = ofType(parentRun, "checkpoint").at(-1)!;
    const parent = {
      config: config({ model: { layers: parentLayers }, training: { epochs: 2 } }),
      weights: last.weights,
      sha256: last.sha256,
    };
    const unfreeze = (b: EpochBoundary): EpochControl => (b.epoch === 1 ? { apply: { frozenLayers: 0 } } : {});
    const live = await run(job(child(4), { parent, resumable: true }), { control: unfreeze });
    const kernels = ofType(live, "checkpoint").map((c) => deserializeWeights(c.weights).values.get("l0_dense/kernel")!.data);
    const parentKernel = deserializeWeights(parent.weights).values.get("l0_dense/kernel")!.data;
    expect(kernels[0]).toEqual(parentKernel); // frozen during epoch 1
    expect(kernels[1]).not.toEqual(parentKernel); // trained from epoch 2
    expect(ofType(live, "epoch").map((e) => e.settings?.frozenLayers)).toEqual([2, 0, 0, 0]);

    const replay = await run(job(child(4), { parent, plannedControls: [{ epoch: 1, apply: { frozenLayers: 0 } }] }));
    expect(only(replay, "finished").weightsSha256).toBe(only(live, "finished").weightsSha256);
    const resumed = await run(job(child(4), { parent, resume: stateAt(live, 2) }));
    expect(only(resumed, "finished").weightsSha256).toBe(only(live, "finished").weightsSha256);
    expect(points(resumed)).toEqual(points(live).slice(2));

    let tooManyAsked = 0;
    let notFineTuneAsked = 0;
    const tooMany = await run(job(child(2), { parent }), {
      control: (b) => (b.epoch === 1 && !tooManyAsked++ ? { apply: { frozenLayers: 4 } } : {}),
    });
    expect(only(tooMany, "controlRejected").message).toBe("apply.frozenLayers: 4 is more than the 3 layers of the parent before its head");
    const notFineTune = await run(job(cfg({ epochs: 1 })), { control: () => (notFineTuneAsked++ ? {} : { apply: { frozenLayers: 1 } }) });
    expect(only(notFineTune, "controlRejected").message).toBe("apply.frozenLayers: only a fine-tune has parent layers to freeze");
  });
});

describe("[trainer/control] through the worker", () => {
  const iris = loadBuiltin("iris");
  const irisJob = (extra: Partial<TrainJob> = {}): TrainJob => ({
    config: config({ data: { normalization: "standard" }, model: dropoutModel, training: { epochs: 4 } }),
    dataset: { bytes: iris.bytes, schema: iris.schema, sha256: iris.sha256 },
    ...extra,
  });

  it("waits at each boundary for sendControl and matches the replay of the same controls", async () => {
    const events: TrainerEvent[] = [];
    const controls: Record<number, EpochControl> = { 2: { apply: { learningRate: 0.01 } }, 3: { then: "pause" } };
    const piloted = startTrainingWorker(irisJob({ piloted: true, resumable: true }), (e) => {
      events.push(e);
      if (e.type === "boundary") piloted.sendControl(e.epoch, controls[e.epoch] ?? {});
    });
    await piloted.done;
    expect(ofType(events, "boundary").map((b) => b.epoch)).toEqual([1, 2, 3]);
    expect(ofType(events, "boundary")[2]!.settings.learningRate).toBe(0.01);
    const paused = only(events, "finished");
    expect(paused).toMatchObject({ status: "paused", epochsRun: 3 });
    const checkpoint = ofType(events, "checkpoint").at(-1)!;
    expect(checkpoint.state).toBeInstanceOf(Uint8Array);

    // Resume in another worker (not piloted: nothing waits), then compare with a replay in this thread.
    const rest: TrainerEvent[] = [];
    await startTrainingWorker(irisJob({ resume: { state: checkpoint.state!, sha256: checkpoint.stateSha256! } }), (e) => rest.push(e)).done;
    const replay: TrainerEvent[] = [];
    await runJob(irisJob({ plannedControls: [{ epoch: 2, apply: { learningRate: 0.01 } }] }), (e) => replay.push(e), { cancelled: false });
    expect(only(rest, "finished")).toMatchObject({ status: "completed", epochsRun: 4 });
    expect(only(rest, "finished").weightsSha256).toBe(only(replay, "finished").weightsSha256);
  });

  it("a cancel ends the wait at a boundary", async () => {
    const events: TrainerEvent[] = [];
    const piloted = startTrainingWorker(irisJob({ piloted: true }), (e) => {
      events.push(e);
      if (e.type === "boundary") piloted.cancel();
    });
    await piloted.done;
    expect(only(events, "finished")).toMatchObject({ status: "cancelled", epochsRun: 1 });
    expect(ofType(events, "checkpoint").map((c) => c.epoch)).toEqual([1]);
  });
});
