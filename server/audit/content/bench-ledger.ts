/**
 * Builds a realistic, content-consistent ledger for benchmarks: tables and artifact files written the way the app
 * writes them, each row with the event that records it, so content verification has real work and finds nothing.
 * Per run: run.create (config, run_params, initial decision), run.start, `checkpointsPerRun` checkpoint.create,
 * evaluation.create, run.complete (metric digests of 2 points per epoch), decision.create (a note): 5 + K events.
 * Shared: one user, project, experiment, dataset, dataset version and split. Checkpoint weights cycle through
 * `weightFiles` distinct files (content-addressed: equal weights share a file), so a 1M-event ledger does not need
 * a million files; file hashing is measured by its own figure.
 *
 * The caller appends events (`append`), so the bench can chain them and sign checkpoints its own way. Raw prepared
 * statements; the caller holds the transaction(s) and turns foreign keys off (a run's rows are written in event order). Invariant: a database built here passes content verification.
 */
import type Database from "better-sqlite3";
import fs from "node:fs";
import path from "node:path";
import { flattenConfig, trainingConfigSchema } from "@/contracts/training-config";
import { canonicalJson, sha256Hex } from "@/contracts/canonical";
import { decisionRecordSha256, evaluationResultSha256, MetricDigest, runParamValue } from "./records";

export type BenchEvent = {
  at: string;
  actorId: number | null;
  actorName: string;
  role: string;
  action: string;
  entityType: string;
  entityId: string;
  payload: Record<string, unknown>;
};
export type BenchLedgerOptions = {
  runs: number;
  checkpointsPerRun: number;
  weightFiles: number;
  artifactsDir: string;
  t0?: number;
  /** after each run (e.g. to commit) */ onRun?: (run: number) => void;
};

export function eventsPerBenchRun(checkpointsPerRun: number): number {
  return 5 + checkpointsPerRun;
}

export function buildBenchContentLedger(sqlite: Database.Database, o: BenchLedgerOptions, append: (e: BenchEvent) => void): void {
  let clock = o.t0 ?? Date.UTC(2025, 0, 1);
  const at = () => new Date((clock += 1000)).toISOString();
  const ins = (sql: string) => sqlite.prepare(sql);
  const user = { id: 1, name: "Bench Engineer", role: "engineer" };
  const sys = { id: null, name: "Runledger server", role: "system" };
  const ev = (
    actor: { id: number | null; name: string; role: string },
    action: string,
    entityType: string,
    entityId: number,
    payload: Record<string, unknown>,
  ) =>
    append({
      at: at(),
      actorId: actor.id,
      actorName: actor.name,
      role: actor.role,
      action,
      entityType,
      entityId: String(entityId),
      payload,
    });

  ins("INSERT INTO users (id, email, name, role, password_hash, created_at) VALUES (1, 'bench@example.org', ?, 'engineer', 'x', ?)").run(
    user.name,
    at(),
  );
  ev(sys, "user.create", "user", 1, { email: "bench@example.org", name: user.name, role: "engineer" });
  ins("INSERT INTO projects (id, name, created_by, created_at) VALUES (1, 'bench', 1, ?)").run(at());
  ev(user, "project.create", "project", 1, { name: "bench", description: "" });
  ins("INSERT INTO experiments (id, project_id, name, created_by, created_at) VALUES (1, 1, 'bench', 1, ?)").run(at());
  ev(user, "experiment.create", "experiment", 1, { projectId: 1, name: "bench", description: "" });

  // Data lineage: one dataset (its bytes stored), version and split.
  const dataBytes = Buffer.from("sepal_length,species\n5.1,setosa\n6.2,virginica\n");
  const dataSha = sha256Hex(dataBytes);
  writeArtifact(o.artifactsDir, dataSha, dataBytes);
  const schemaJson = JSON.stringify({
    columns: [
      { name: "sepal_length", type: "number" },
      { name: "species", type: "string" },
    ],
    labelColumn: "species",
    kind: "tabular",
  });
  const dsAt = at();
  ins(
    "INSERT INTO datasets (id, name, source, builtin_name, origin, licence, sha256, byte_size, schema_json, row_count, created_by, created_at) VALUES (1, 'bench', 'upload', NULL, '', '', ?, ?, ?, 2, 1, ?)",
  ).run(dataSha, dataBytes.length, schemaJson, dsAt);
  ev(user, "dataset.create", "dataset", 1, {
    name: "bench",
    source: "upload",
    builtinName: null,
    sha256: dataSha,
    bytes: dataBytes.length,
    rows: 2,
    columns: 2,
    labelColumn: "species",
    licence: "",
    origin: "",
    schemaSha256: sha256Hex(schemaJson),
    createdAt: dsAt,
  });
  const recipe = canonicalJson([]),
    report = canonicalJson({ steps: [], rowsIn: 2, rowsOut: 2 }),
    rowsSha = "11".repeat(32),
    dvAt = at();
  ins(
    "INSERT INTO dataset_versions (id, dataset_id, recipe_json, recipe_sha256, report_json, sha256, row_count, created_at) VALUES (1, 1, ?, ?, ?, ?, 2, ?)",
  ).run(recipe, sha256Hex(recipe), report, rowsSha, dvAt);
  ev(user, "datasetVersion.create", "datasetVersion", 1, {
    datasetId: 1,
    recipeSha256: sha256Hex(recipe),
    sha256: rowsSha,
    rowsIn: 2,
    rowsOut: 2,
    rowCount: 2,
    reportSha256: sha256Hex(report),
    createdAt: dvAt,
  });
  const part = (count: number, d: string) => ({ count, classBalance: null, indicesSha256: d.repeat(32) });
  const manifest = canonicalJson({
    strategy: "random",
    seed: 1,
    ratios: { train: 0.5, validation: 0, test: 0.5 },
    partitions: { train: part(1, "22"), validation: part(0, "33"), test: part(1, "44") },
    normalization: { method: "none", stats: {} },
    labelEncoding: ["setosa", "virginica"],
  });
  const spec = canonicalJson({ strategy: "random", seed: 1 }),
    splitSha = sha256Hex(manifest),
    spAt = at();
  ins("INSERT INTO splits (id, dataset_version_id, spec_json, manifest_json, sha256, created_at) VALUES (1, 1, ?, ?, ?, ?)").run(
    spec,
    manifest,
    splitSha,
    spAt,
  );
  ev(user, "split.create", "split", 1, {
    datasetVersionId: 1,
    sha256: splitSha,
    counts: { train: 1, validation: 0, test: 1 },
    indicesSha256: { train: "22".repeat(32), validation: "33".repeat(32), test: "44".repeat(32) },
    specSha256: sha256Hex(spec),
    createdAt: spAt,
  });

  const weights: { sha: string; bytes: number }[] = [];
  for (let i = 0; i < o.weightFiles; i++) {
    const b = Buffer.alloc(4096, i % 251);
    b.writeUInt32LE(i, 0);
    const sha = sha256Hex(b);
    writeArtifact(o.artifactsDir, sha, b);
    weights.push({ sha, bytes: b.length });
  }

  const insRun =
    ins(`INSERT INTO runs (id, experiment_id, name, status, config_json, config_sha256, seed, origin, parent_run_id, parent_checkpoint_id, dataset_version_id, split_id, backend, backend_reason, environment_json, param_count, memory_json, final_weights_sha256, created_by, created_at, started_at, finished_at)
    VALUES (?, 1, ?, 'completed', ?, ?, ?, 'new', NULL, NULL, 1, 1, 'cpu', 'bench', ?, 51, ?, ?, 1, ?, ?, ?)`);
  const insParam = ins("INSERT INTO run_params (run_id, key, value_text, value_num) VALUES (?, ?, ?, ?)");
  const insDecision = ins(
    "INSERT INTO decisions (id, run_id, kind, path, old_value_json, new_value_json, rationale, corrects_decision_id, author_id, created_at) VALUES (?, ?, ?, '', NULL, ?, ?, NULL, 1, ?)",
  );
  const insCk = ins(
    "INSERT INTO checkpoints (id, run_id, epoch, step, sha256, bytes, metrics_json, is_best, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
  );
  const insEval = ins(
    "INSERT INTO evaluations (id, run_id, checkpoint_id, split_id, partition, data_sha256, metrics_json, confusion_json, source, created_by, created_at) VALUES (?, ?, ?, 1, 'test', ?, ?, ?, 'training', 1, ?)",
  );
  const insMetric = ins("INSERT INTO metrics (run_id, key, step, epoch, value, wall_time_ms) VALUES (?, ?, ?, ?, ?, 0)");
  const insSummary = ins("INSERT INTO metric_summaries (run_id, key, last, last_step, min, max, count) VALUES (?, ?, ?, ?, ?, ?, ?)");
  const insNote = ins(
    "INSERT INTO decisions (id, run_id, kind, path, old_value_json, new_value_json, rationale, corrects_decision_id, author_id, created_at) VALUES (?, ?, 'note', '', NULL, NULL, ?, NULL, 1, ?)",
  );
  const insRollup = ins(
    "INSERT INTO metric_rollups (run_id, key, block, first_step, last_step, min_step, min_value, max_step, max_value, count) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
  );
  const environment = { tfjs: "4.22.0", node: "v20", appCommit: "bench", fineTune: null };
  const memoryJson = canonicalJson({ paramCount: 51 });
  const trainer = { id: 1, name: "Runledger server (trainer, for Bench Engineer)", role: "system" };
  let ckId = 0,
    decisionId = 0,
    evalId = 0,
    w = 0;

  for (let r = 1; r <= o.runs; r++) {
    const config = trainingConfigSchema.parse({
      data: { dataset: { datasetId: "1" } },
      model: { layers: [{ type: "dense", units: 8 + (r % 8), activation: "relu" }] },
      training: { optimizer: { name: "adam" }, learningRate: 0.001 * (1 + (r % 50)), batchSize: 16, epochs: o.checkpointsPerRun, seed: r },
    });
    const configJson = canonicalJson(config),
      configSha = sha256Hex(configJson);
    const createdAt = at(),
      name = `run ${r}`;
    // Metrics: loss and val_loss per epoch; the best checkpoint has the lowest val_loss (the last one).
    const digest = new MetricDigest();
    const points: [string, number, number, number][] = [];
    for (const key of ["loss", "val_loss"]) for (let e = 1; e <= o.checkpointsPerRun; e++) points.push([key, e * 10, 1 / (e + (r % 7)), e]);
    for (const [key, step, value, epoch] of points) digest.add(key, step, value, epoch);
    const bestCk = ckId + o.checkpointsPerRun;
    const finalWeights = weights[(w + o.checkpointsPerRun - 1) % weights.length]!.sha;
    for (const [key, v] of Object.entries(flattenConfig(config))) {
      const p = runParamValue(v);
      insParam.run(r, key, p.valueText, p.valueNum);
    }
    const d = {
      id: ++decisionId,
      runId: r,
      kind: "initial",
      path: "",
      oldValueJson: null,
      newValueJson: configJson,
      rationale: "bench baseline",
      correctsDecisionId: null,
      authorId: 1,
      createdAt,
    };
    insDecision.run(d.id, r, "initial", configJson, d.rationale, createdAt);
    ev(user, "run.create", "run", r, {
      experimentId: 1,
      name,
      configSha256: configSha,
      origin: "new",
      parentRunId: null,
      parentCheckpointId: null,
      createdAt,
      decisions: [{ id: d.id, path: "", kind: "initial", sha256: decisionRecordSha256(d) }],
    });
    const startedAt = at();
    append({
      at: startedAt,
      actorId: trainer.id,
      actorName: trainer.name,
      role: trainer.role,
      action: "run.start",
      entityType: "run",
      entityId: String(r),
      payload: {
        backend: "cpu",
        backendReason: "bench",
        environment,
        paramCount: 51,
        memorySha256: sha256Hex(memoryJson),
        datasetVersionId: 1,
        splitId: 1,
        startedAt,
      },
    });
    for (let e = 1; e <= o.checkpointsPerRun; e++) {
      const wt = weights[w++ % weights.length]!,
        id = ++ckId,
        ckAt = at();
      const metrics = { loss: 1 / (e + (r % 7)), val_loss: 1 / (e + (r % 7)) };
      insCk.run(id, r, e, e * 10, wt.sha, wt.bytes, canonicalJson(metrics), id === bestCk ? 1 : 0, ckAt);
      ev(trainer, "checkpoint.create", "checkpoint", id, {
        runId: r,
        epoch: e,
        step: e * 10,
        sha256: wt.sha,
        bytes: wt.bytes,
        metrics,
        createdAt: ckAt,
      });
    }
    const result = {
      task: "classification",
      accuracy: 0.5 + (r % 50) / 100,
      confusion: {
        labels: ["setosa", "virginica"],
        matrix: [
          [1, 0],
          [0, 1],
        ],
      },
    };
    const { confusion, ...rest } = result;
    const evAt = at(),
      metricsJson = canonicalJson(rest),
      confusionJson = canonicalJson(confusion),
      dataSha = "55".repeat(32);
    insEval.run(++evalId, r, bestCk, dataSha, metricsJson, confusionJson, evAt);
    ev(trainer, "evaluation.create", "evaluation", evalId, {
      runId: r,
      checkpointId: bestCk,
      checkpointSha256: finalWeights,
      partition: "test",
      dataSha256: dataSha,
      splitId: 1,
      source: "training",
      createdAt: evAt,
      metricsSha256: evaluationResultSha256(metricsJson, confusionJson),
    });
    for (const [key, s] of digest.summaries) {
      insSummary.run(r, key, s.last, s.lastStep, s.min, s.max, o.checkpointsPerRun);
      for (const [block, b] of s.blocks)
        insRollup.run(r, key, block, b.firstStep, b.lastStep, b.minStep, b.minValue, b.maxStep, b.maxValue, o.checkpointsPerRun);
    }
    for (const [key, step, value, epoch] of points) insMetric.run(r, key, step, epoch, value);
    const finals = Object.fromEntries([...digest.summaries].map(([k, s]) => [k, s.last]));
    const sums = digest.digest();
    const finishedAt = at();
    insRun.run(r, name, configJson, configSha, r, canonicalJson(environment), memoryJson, finalWeights, createdAt, startedAt, finishedAt);
    ev(trainer, "run.complete", "run", r, {
      status: "completed",
      weightsSha256: finalWeights,
      epochsRun: o.checkpointsPerRun,
      stoppedEarly: false,
      samplesPerSecond: 1000,
      bestCheckpointId: bestCk,
      finalMetrics: finals,
      metricsSha256: sums.sha256,
      metricPointsSha256: sums.pointsSha256,
      metricPoints: sums.points,
      finishedAt,
    });
    const noteAt = at(),
      note = {
        id: ++decisionId,
        runId: r,
        kind: "note",
        path: "",
        oldValueJson: null,
        newValueJson: null,
        rationale: `looked at run ${r}`,
        correctsDecisionId: null,
        authorId: 1,
        createdAt: noteAt,
      };
    insNote.run(note.id, r, note.rationale, noteAt);
    ev(user, "decision.create", "decision", note.id, {
      runId: r,
      kind: "note",
      path: "",
      correctsDecisionId: null,
      rationale: note.rationale,
      createdAt: noteAt,
      sha256: decisionRecordSha256(note),
    });
    o.onRun?.(r);
  }
}

function writeArtifact(dir: string, sha: string, bytes: Uint8Array): void {
  const file = path.join(dir, sha.slice(0, 2), sha);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, bytes);
}
