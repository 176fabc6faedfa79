/**
 * Benchmark of model compression (issue 17) on the digits CNN (examples/digits-cnn.json: 8×8 digits, one conv layer,
 * a dense layer; trained for real in a worker, throw-away data and key directories), its best checkpoint compressed
 * by each method as `cli compress` and the run page do (launchCompression: a run of origin "compress"):
 *
 * - float16 and int8 quantization (int8: one byte per weight plus a float32 scale per output channel);
 * - magnitude pruning to sparsity 0.5 with 2 fine-tune epochs;
 * - distillation into a dense student (flatten, 16 units) at temperature 4, alpha 0.7, 12 epochs.
 *
 * compress_<method>_size_ratio: the compressed checkpoint file's bytes over the source checkpoint file's (both include
 * their headers). compress_<method>_accuracy_delta: the compressed model's test accuracy minus the source's, on the
 * same test partition, in percentage points (the run's accuracy_delta metric × 100). One run of each: the trainings
 * are seeded and deterministic on one backend, so repeats would give the same numbers.
 *
 * Run alone: npx tsx bench/compress.ts
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { eq } from "drizzle-orm";
import { runs, users } from "@/db/schema";
import { createAppServices } from "@/server/app-context/app-services";
import { DEMO_USERS, ensureDemoUsersAndProject } from "@/server/demo/seed";
import { createRun } from "@/server/runs/service";
import { compressionResult, launchCompression, type CompressRunInput } from "@/server/runs/compression";
import { actorOf } from "@/server/users/service";
import { printFigure, type Figure } from "./figures";

type Method = CompressRunInput["method"];

const METHODS: { method: Method; params: Partial<CompressRunInput>; sizeTarget: string; accuracyTarget: string }[] = [
  { method: "float16", params: {}, sizeTarget: "≈ 0.5 (2 bytes per weight)", accuracyTarget: "|Δ| ≤ 1 pp" },
  { method: "int8", params: {}, sizeTarget: "≤ 0.3 (1 byte per weight + per-channel scales)", accuracyTarget: "|Δ| ≤ 2 pp" },
  {
    method: "prune",
    params: { sparsity: 0.5, fineTuneEpochs: 2 },
    sizeTarget: "< 1 (sparsity 0.5, 2 fine-tune epochs)",
    accuracyTarget: "|Δ| ≤ 5 pp",
  },
  {
    method: "distill",
    params: {
      student: {
        model: { layers: [{ type: "flatten" }, { type: "dense", units: 16, activation: "relu" }] },
        training: { epochs: 12, learningRate: 0.01 },
      },
      temperature: 4,
      alpha: 0.7,
    },
    sizeTarget: "informational (a dense student of 16 units)",
    accuracyTarget: "informational",
  },
];

export async function benchCompress(): Promise<Figure[]> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-bench-compress-"));
  const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), "runledger-bench-compress-keys-"));
  const services = createAppServices(dataDir, { keyDir, maxConcurrent: 1 });
  try {
    const seed = ensureDemoUsersAndProject(services);
    const email = DEMO_USERS.find((u) => u.role === "engineer")!.email;
    const ctx = { ...services, actor: actorOf(services.db.select().from(users).where(eq(users.email, email)).get()!) };
    const config = JSON.parse(fs.readFileSync(path.join("examples", "digits-cnn.json"), "utf8")) as unknown;
    const source = createRun(ctx, { experimentId: seed.experimentId, config, rationale: "compression benchmark: the source model" });
    await services.orchestrator.launch(source.id);
    await services.orchestrator.waitFor(source.id);
    const sourceRow = services.db.select().from(runs).where(eq(runs.id, source.id)).get()!;
    if (sourceRow.status !== "completed")
      throw new Error(`bench compress: the source run ${source.id} ended ${sourceRow.status}: ${sourceRow.error}`);

    const figures: Figure[] = [];
    const notes: string[] = [];
    for (const m of METHODS) {
      const out = await launchCompression(ctx, services.orchestrator, {
        runId: source.id,
        checkpoint: "best",
        method: m.method,
        rationale: `compression benchmark: ${m.method}`,
        ...m.params,
      });
      await services.orchestrator.waitFor(out.id);
      const r = await compressionResult(services.db, out.id);
      if (r.status !== "completed" || r.sizeBytes === null || r.parentSizeBytes === null)
        throw new Error(`bench compress: ${m.method} run ${out.id} ended ${r.status}: ${r.error}`);
      const delta = r.metrics.accuracy_delta;
      if (typeof delta !== "number") throw new Error(`bench compress: ${m.method} recorded no accuracy_delta`);
      notes.push(
        `${m.method} ${r.sizeBytes}/${r.parentSizeBytes} B, accuracy ${((r.metrics.accuracy ?? NaN) * 100).toFixed(1)} % vs ${((r.parentMetrics.accuracy ?? NaN) * 100).toFixed(1)} %`,
      );
      figures.push(
        {
          name: `compress_${m.method}_size_ratio`,
          value: Math.round((r.sizeBytes / r.parentSizeBytes) * 1000) / 1000,
          unit: "×",
          target: m.sizeTarget,
        },
        { name: `compress_${m.method}_accuracy_delta`, value: Math.round(delta * 1000) / 10, unit: "pp", target: m.accuracyTarget },
      );
    }
    process.stdout.write(
      `(compress: digits CNN, ${sourceRow.backend}; ${notes.join("; ")}; load ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(" ")})\n`,
    );
    return figures;
  } finally {
    services.db.$client.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
    fs.rmSync(keyDir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  benchCompress().then((figures) => {
    for (const f of figures) printFigure(f);
    process.exit(0);
  });
}
