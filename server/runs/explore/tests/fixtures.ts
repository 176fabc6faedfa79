/**
 * A small, hand-written set of runs in a real SQLite file for the runs/explore tests. Rows are inserted
 * directly (the tests exercise queries, not the services), with valid foreign keys.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { openDatabase, type Db } from "@/db/client";
import {
  users,
  projects,
  experiments,
  runs,
  runParams,
  runTags,
  metricSummaries,
  decisions,
  datasets,
  datasetVersions,
  splits,
  type RunStatus,
} from "@/db/schema";

export type Fixture = { db: Db; dir: string; ids: Record<string, number>; close: () => void };

type RunSpec = {
  key: string;
  name: string;
  status: RunStatus;
  experiment: "sweep" | "other";
  author: "ada" | "grace";
  createdAt: string;
  finishedAt?: string;
  params: Record<string, string | number | boolean | null>;
  metrics?: Record<string, { last: number; min: number; max: number }>;
  tags?: string[];
  split?: "a" | "b" | null;
};

export const RUN_SPECS: RunSpec[] = [
  {
    key: "adam",
    name: "adam-fast",
    status: "completed",
    experiment: "sweep",
    author: "ada",
    createdAt: "2025-03-01T10:00:00.000Z",
    finishedAt: "2025-03-01T10:05:00.000Z",
    params: {
      "training.optimizer.name": "adam",
      "training.learningRate": 0.01,
      "training.batchSize": 32,
      "training.epochs": 10,
      "training.seed": 1,
      "training.shuffle": true,
      "model.layers.0.units": 64,
      "data.dataset.builtin": "iris",
    },
    metrics: { val_accuracy: { last: 0.95, min: 0.5, max: 0.96 }, val_loss: { last: 0.1, min: 0.09, max: 1.2 } },
    tags: ["baseline"],
    split: "a",
  },
  {
    key: "sgd",
    name: "sgd-slow",
    status: "completed",
    experiment: "sweep",
    author: "grace",
    createdAt: "2025-03-02T10:00:00.000Z",
    finishedAt: "2025-03-02T11:00:00.000Z",
    params: {
      "training.optimizer.name": "sgd",
      "training.learningRate": 0.001,
      "training.batchSize": 64,
      "training.epochs": 10,
      "training.seed": 1,
      "training.shuffle": false,
      "model.layers.0.units": 32,
      "data.dataset.builtin": "iris",
    },
    metrics: { val_accuracy: { last: 0.8, min: 0.4, max: 0.85 }, val_loss: { last: 0.5, min: 0.45, max: 1.3 } },
    split: "a",
  },
  {
    key: "rmsprop",
    name: "RMSprop-try",
    status: "failed",
    experiment: "sweep",
    author: "ada",
    createdAt: "2025-03-03T10:00:00.000Z",
    finishedAt: "2025-03-03T10:01:00.000Z",
    params: {
      "training.optimizer.name": "rmsprop",
      "training.learningRate": 0.005,
      "training.batchSize": 32,
      "training.epochs": 20,
      "training.seed": 2,
      "training.shuffle": true,
      "model.layers.0.units": 64,
      "data.dataset.builtin": "digits",
    },
    metrics: { val_accuracy: { last: 0.92, min: 0.3, max: 0.93 } },
    tags: ["candidate", "baseline-2"],
    split: "b",
  },
  {
    // No optimizer param at all and no metrics: the "missing field" case.
    key: "bare",
    name: "50%_off run",
    status: "running",
    experiment: "other",
    author: "grace",
    createdAt: "2025-03-04T10:00:00.000Z",
    params: { "training.learningRate": 0.1, "training.batchSize": 16, "training.earlyStopping": null },
    split: null,
  },
  {
    key: "evil",
    name: '"; DROP TABLE runs; --',
    status: "completed",
    experiment: "other",
    author: "ada",
    createdAt: "2025-03-05T10:00:00.000Z",
    finishedAt: "2025-03-05T10:02:00.000Z",
    params: { "training.optimizer.name": "adam", "training.learningRate": 0.02, "training.batchSize": 128 },
    metrics: { val_accuracy: { last: 0.7, min: 0.2, max: 0.75 } },
  },
];

export function createFixture(): Fixture {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "runs-query-"));
  const db = openDatabase(dir);
  const at = "2025-01-01T00:00:00.000Z";
  const ids: Record<string, number> = {};
  db.transaction((tx) => {
    const person = (name: string) =>
      tx
        .insert(users)
        .values({ email: `${name}@example.org`, name, role: "engineer", passwordHash: "x", createdAt: at })
        .returning()
        .get().id;
    const authors = { ada: person("ada"), grace: person("grace") };
    const project = tx.insert(projects).values({ name: "p", createdBy: authors.ada, createdAt: at }).returning().get().id;
    const exps = {
      sweep: tx.insert(experiments).values({ projectId: project, name: "sweep", createdBy: authors.ada, createdAt: at }).returning().get()
        .id,
      other: tx.insert(experiments).values({ projectId: project, name: "other", createdBy: authors.ada, createdAt: at }).returning().get()
        .id,
    };
    const dataset = tx
      .insert(datasets)
      .values({
        name: "iris",
        source: "builtin",
        builtinName: "iris",
        sha256: "d".repeat(64),
        byteSize: 1,
        schemaJson: "{}",
        rowCount: 150,
        createdBy: authors.ada,
        createdAt: at,
      })
      .returning()
      .get().id;
    const version = tx
      .insert(datasetVersions)
      .values({
        datasetId: dataset,
        recipeJson: "[]",
        recipeSha256: "r".repeat(64),
        reportJson: "{}",
        sha256: "v".repeat(64),
        rowCount: 150,
        createdAt: at,
      })
      .returning()
      .get().id;
    const splitIds = {
      a: tx
        .insert(splits)
        .values({ datasetVersionId: version, specJson: "{}", manifestJson: "{}", sha256: "a".repeat(64), createdAt: at })
        .returning()
        .get().id,
      b: tx
        .insert(splits)
        .values({ datasetVersionId: version, specJson: "{}", manifestJson: "{}", sha256: "b".repeat(64), createdAt: at })
        .returning()
        .get().id,
    };
    ids.version = version;
    ids.splitA = splitIds.a;
    ids.splitB = splitIds.b;
    for (const r of RUN_SPECS) {
      const id = tx
        .insert(runs)
        .values({
          experimentId: exps[r.experiment],
          name: r.name,
          status: r.status,
          configJson: "{}",
          configSha256: "c".repeat(64),
          seed: 1,
          datasetVersionId: r.split ? version : null,
          splitId: r.split ? splitIds[r.split] : null,
          createdBy: authors[r.author],
          createdAt: r.createdAt,
          startedAt: r.createdAt,
          finishedAt: r.finishedAt ?? null,
        })
        .returning()
        .get().id;
      ids[r.key] = id;
      for (const [key, v] of Object.entries(r.params)) {
        const value =
          typeof v === "number"
            ? { valueNum: v, valueText: null }
            : typeof v === "boolean"
              ? { valueNum: v ? 1 : 0, valueText: String(v) }
              : { valueNum: null, valueText: v };
        tx.insert(runParams)
          .values({ runId: id, key, ...value })
          .run();
      }
      for (const [key, m] of Object.entries(r.metrics ?? {}))
        tx.insert(metricSummaries)
          .values({ runId: id, key, ...m, lastStep: 100, count: 10 })
          .run();
      for (const tag of r.tags ?? []) tx.insert(runTags).values({ runId: id, tag, createdBy: authors.ada, createdAt: at }).run();
      tx.insert(decisions)
        .values({
          runId: id,
          kind: "initial",
          path: "",
          newValueJson: "{}",
          rationale: `start ${r.key}`,
          authorId: authors[r.author],
          createdAt: r.createdAt,
        })
        .run();
    }
    tx.insert(decisions)
      .values({
        runId: ids.sgd!,
        kind: "change",
        path: "training.optimizer.name",
        oldValueJson: '"adam"',
        newValueJson: '"sgd"',
        rationale: "try plain sgd",
        authorId: authors.grace,
        createdAt: "2025-03-02T10:00:01.000Z",
      })
      .run();
  });
  return { db, dir, ids, close: () => (db.$client.close(), fs.rmSync(dir, { recursive: true, force: true })) };
}
