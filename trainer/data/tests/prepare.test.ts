/**
 * prepareData end to end: built-in datasets give the right shapes and class counts; normalisation and the text
 * vocabulary are fitted on the train partition only; digests are stable; faults surface as DatasetErrors.
 */
import { describe, expect, it } from "vitest";
import { dataSchema, type TrainingConfig } from "@/contracts/training-config";
import { sha256Canonical, sha256Hex } from "@/contracts/canonical";
import type { DatasetSchema, PreparedData } from "@/trainer/types";
import { loadBuiltin } from "../builtin";
import { applyCleaning } from "../clean";
import { parseCsv } from "../csv";
import { prepareData } from "../prepare";
import { inferSchema } from "../schema";
import { OOV_ID } from "../text";
import { bytesOf, datasetErrorOf } from "./helpers";

const dataSection = (input: Record<string, unknown> = {}): TrainingConfig["data"] =>
  dataSchema.parse({ dataset: { datasetId: "test" }, ...input });

function jobDataset(csv: string, schemaOpts: Parameters<typeof inferSchema>[1] = {}) {
  const bytes = bytesOf(csv);
  return { bytes, sha256: sha256Hex(bytes), schema: inferSchema(parseCsv(bytes), schemaOpts) };
}

function builtinDataset(name: string) {
  const b = loadBuiltin(name);
  return { bytes: b.bytes, sha256: b.sha256, schema: b.schema };
}

/** Rows of y decoded from one-hot back to class names. */
function decodeLabels(p: PreparedData, part: "train" | "validation" | "test"): string[] {
  const k = p.classes!.length;
  const y = p.partitions[part].y;
  return Array.from({ length: p.partitions[part].count }, (_, r) => p.classes![y.subarray(r * k, r * k + k).indexOf(1)]!);
}

function countBy(values: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}

describe("prepareData on the built-in datasets", () => {
  it("iris: 4 features, 3 classes, a stratified 105/24/21 split with one-hot labels", () => {
    const p = prepareData(builtinDataset("iris"), dataSection({ normalization: "standard" }));
    expect(p.featureShape).toEqual([4]);
    expect(p.classes).toEqual(["setosa", "versicolor", "virginica"]);
    expect(p.version.rowCount).toBe(150);
    expect([p.partitions.train.count, p.partitions.validation.count, p.partitions.test.count]).toEqual([105, 24, 21]);
    expect(p.partitions.train.x.length).toBe(105 * 4);
    expect(p.partitions.train.y.length).toBe(105 * 3);
    expect(countBy(decodeLabels(p, "train"))).toEqual({ setosa: 35, versicolor: 35, virginica: 35 });
    expect(p.split.manifest.partitions.test.classBalance).toEqual({ setosa: 7, versicolor: 7, virginica: 7 });
    expect(countBy(decodeLabels(p, "test"))).toEqual(p.split.manifest.partitions.test.classBalance);
    expect(Object.keys(p.split.manifest.normalization.stats)).toEqual(["sepal_length", "sepal_width", "petal_length", "petal_width"]);
    // Standardised on train: the train features have mean ≈ 0 and std ≈ 1 per column.
    for (let c = 0; c < 4; c++) {
      const col = Array.from({ length: 105 }, (_, r) => p.partitions.train.x[r * 4 + c]!);
      const mean = col.reduce((a, b) => a + b, 0) / col.length;
      const std = Math.sqrt(col.reduce((a, b) => a + (b - mean) ** 2, 0) / col.length);
      expect(mean).toBeCloseTo(0, 5);
      expect(std).toBeCloseTo(1, 5);
    }
  });

  it("digits: [8, 8, 1] images, 10 classes in numeric order, 150 per class", () => {
    const p = prepareData(builtinDataset("digits"), dataSection());
    expect(p.featureShape).toEqual([8, 8, 1]);
    expect(p.classes).toEqual(["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
    expect([p.partitions.train.count, p.partitions.validation.count, p.partitions.test.count]).toEqual([1050, 230, 220]);
    expect(p.partitions.test.x.length).toBe(220 * 64);
    const all = [...decodeLabels(p, "train"), ...decodeLabels(p, "validation"), ...decodeLabels(p, "test")];
    expect(Object.values(countBy(all))).toEqual(Array(10).fill(150));
    expect(Math.min(...p.partitions.train.x)).toBe(0);
    expect(Math.max(...p.partitions.train.x)).toBeLessThanOrEqual(1);
    expect(p.split.manifest.normalization).toEqual({ method: "none", stats: {} });
  });

  it("sentences: padded token sequences, a train-only vocabulary, 4 balanced classes", () => {
    const p = prepareData(builtinDataset("sentences"), dataSection());
    const [length] = p.featureShape;
    expect(p.featureShape).toHaveLength(1);
    expect(length).toBeGreaterThan(5);
    expect(length).toBeLessThanOrEqual(32);
    expect(p.classes).toEqual(["cooking", "finance", "sport", "weather"]);
    expect([p.partitions.train.count, p.partitions.validation.count, p.partitions.test.count]).toEqual([280, 60, 60]);
    expect(p.split.manifest.partitions.train.classBalance).toEqual({ cooking: 70, finance: 70, sport: 70, weather: 70 });
    expect(p.vocabularySize).toBe(p.split.manifest.vocabulary!.size);
    expect(p.split.manifest.vocabulary!.sequenceLength).toBe(length);
    for (const part of ["train", "validation", "test"] as const) {
      const x = p.partitions[part].x;
      expect(x.length).toBe(p.partitions[part].count * length!);
      expect(x.every((v) => Number.isInteger(v) && v >= 0 && v < p.vocabularySize!)).toBe(true);
    }
    // Every train token is in the vocabulary, so out-of-vocabulary ids only occur outside train.
    expect(p.partitions.train.x.includes(OOV_ID)).toBe(false);
  });

  it("is deterministic: same inputs give the same digests and tensors; the seed changes only the split", () => {
    const data = dataSection({ normalization: "minmax", cleaning: [{ op: "removeOutliers", zThreshold: 3 }] });
    const a = prepareData(builtinDataset("iris"), data);
    const b = prepareData(builtinDataset("iris"), data);
    expect(b.version.sha256).toBe(a.version.sha256);
    expect(b.split.sha256).toBe(a.split.sha256);
    expect(b.split.sha256).toBe(sha256Canonical(b.split.manifest));
    expect(b.partitions.train.x).toEqual(a.partitions.train.x);
    const reseeded = prepareData(builtinDataset("iris"), { ...data, split: { ...data.split, seed: 7 } });
    expect(reseeded.version.sha256).toBe(a.version.sha256);
    expect(reseeded.split.sha256).not.toBe(a.split.sha256);
    expect(reseeded.split.manifest.partitions.train.indicesSha256).not.toBe(a.split.manifest.partitions.train.indicesSha256);
  });
});

describe("prepareData: fitting on the train partition only", () => {
  // x runs 0..99 with the row, so every partition has a different mean and range.
  const csv = ["x,group", ...Array.from({ length: 100 }, (_, i) => `${i},${i % 2 ? "odd" : "even"}`)].join("\n");

  it("standard: the recorded mean and std are those of the train rows, and all partitions use them", () => {
    const p = prepareData(jobDataset(csv, { labelColumn: "group" }), dataSection({ normalization: "standard" }));
    const trainX = p.partitions.train.indices; // x equals the row index
    const mean = trainX.reduce((a, b) => a + b, 0) / trainX.length;
    const std = Math.sqrt(trainX.reduce((a, b) => a + (b - mean) ** 2, 0) / trainX.length);
    expect(p.split.manifest.normalization.stats.x).toEqual({ a: mean, b: std });
    expect(mean).not.toBe(49.5); // the mean over all 100 rows
    const testX = p.partitions.test.indices;
    expect(Array.from(p.partitions.test.x)).toEqual(testX.map((v) => Math.fround((v - mean) / std)));
  });

  it("minmax: min and range come from train; validation and test may fall outside [0, 1]", () => {
    const p = prepareData(
      jobDataset(csv, { labelColumn: "group" }),
      dataSection({ normalization: "minmax", split: { strategy: "random", train: 0.5, validation: 0.25, test: 0.25, seed: 3 } }),
    );
    const train = p.partitions.train.indices;
    const min = Math.min(...train);
    const max = Math.max(...train);
    expect(p.split.manifest.normalization.stats.x).toEqual({ a: min, b: max - min });
    expect(Array.from(p.partitions.validation.x)).toEqual(p.partitions.validation.indices.map((v) => Math.fround((v - min) / (max - min))));
    expect(Math.min(...p.partitions.train.x)).toBe(0);
    expect(Math.max(...p.partitions.train.x)).toBe(1);
  });

  it("text: the vocabulary holds train words only; a word seen only in test is out-of-vocabulary", () => {
    const rows = Array.from({ length: 40 }, (_, i) => `the ${i % 2 ? "cat" : "dog"} saw word${i},${i % 2 ? "cats" : "dogs"}`);
    const p = prepareData(jobDataset(["text,label", ...rows].join("\n")), dataSection());
    expect(p.split.manifest.partitions.train.classBalance).toEqual({ cats: 14, dogs: 14 });
    const len = p.featureShape[0]!;
    expect(len).toBe(4);
    // 2 reserved ids + "the", "saw", "cat", "dog" + one unique word per train row.
    expect(p.vocabularySize).toBe(2 + 4 + p.partitions.train.count);
    const test = p.partitions.test;
    const testLabels = decodeLabels(p, "test");
    for (let r = 0; r < test.count; r++) {
      const seq = Array.from(test.x.subarray(r * len, r * len + len));
      // Ids by train frequency, ties alphabetical: "saw" and "the" (every row) → 2, 3; "cat", "dog" (14 each) → 4, 5.
      expect(seq[0]).toBe(3);
      expect(seq[1]).toBe(testLabels[r] === "cats" ? 4 : 5);
      expect(seq[2]).toBe(2);
      expect(seq[3]).toBe(OOV_ID); // word<i> of a test row was never seen in train
    }
  });
});

describe("prepareData: recipe, labels and faults", () => {
  const messy = "a,b,label\n1,2,x\n,3,y\n2,4,\n3,5,x\n4,6,y\n5,7,x\n6,8,y\n7,9,x\n8,10,y\n9,11,x\n10,12,y\n";

  it("records the cleaning recipe, the report, and the version digest of the cleaned rows", () => {
    const dataset = jobDataset(messy);
    const cleaning = [{ op: "impute" as const, strategy: "mean" as const }];
    const p = prepareData(
      dataset,
      dataSection({ cleaning, split: { strategy: "random", train: 0.6, validation: 0.2, test: 0.2, seed: 1 } }),
    );
    expect(p.version.recipe).toEqual(cleaning);
    expect(p.version.report.steps.map((s) => s.op)).toEqual(["dropMissingLabel", "impute"]);
    expect(p.version.rowCount).toBe(10);
    const cleaned = applyCleaning(parseCsv(dataset.bytes), cleaning, dataset.schema).table;
    expect(p.version.sha256).toBe(sha256Canonical({ columns: cleaned.columns, rows: cleaned.rows }));
    expect(p.datasetSha256).toBe(dataset.sha256);
    const dropped = prepareData(
      dataset,
      dataSection({ cleaning: [{ op: "dropMissing" }], split: { strategy: "random", train: 0.6, validation: 0.2, test: 0.2, seed: 1 } }),
    );
    expect(dropped.version.sha256).not.toBe(p.version.sha256);
    expect(dropped.version.rowCount).toBe(9);
  });

  it("names the original file row of a missing feature value left uncleaned", () => {
    const e = datasetErrorOf(() =>
      prepareData(jobDataset(messy), dataSection({ split: { strategy: "random", train: 0.6, validation: 0.2, test: 0.2, seed: 1 } })),
    );
    expect(e.code).toBe("MISSING_VALUE");
    expect(e.message).toBe("column 'a' row 2 has no value; add a dropMissing or impute cleaning step");
  });

  it("sorts numeric class labels numerically and honours a label column chosen in the config", () => {
    const csv = "f,g,label\n" + Array.from({ length: 30 }, (_, i) => `${i},${i % 3},${[2, 10, 1][i % 3]}`).join("\n");
    const p = prepareData(jobDataset(csv), dataSection());
    expect(p.classes).toEqual(["1", "2", "10"]);
    expect(p.split.manifest.labelEncoding).toEqual(["1", "2", "10"]);
    const byG = prepareData(jobDataset(csv), dataSection({ labelColumn: "g" }));
    expect(byG.classes).toEqual(["0", "1", "2"]);
    expect(Object.keys(byG.split.manifest.normalization.stats)).toEqual([]);
    expect(byG.featureShape).toEqual([2]);
  });

  it("regression: y holds the values, and a stratified request is recorded as the random split it became", () => {
    const csv = "x,price\n" + Array.from({ length: 20 }, (_, i) => `${i},${i * 1.5}`).join("\n");
    const p = prepareData(jobDataset(csv, { labelColumn: "price" }), dataSection({ task: "regression" }));
    expect(p.classes).toBeNull();
    expect(p.split.manifest.strategy).toBe("random");
    expect(p.split.manifest.labelEncoding).toBeNull();
    expect(p.split.manifest.partitions.train.classBalance).toBeNull();
    expect(Array.from(p.partitions.train.y)).toEqual(p.partitions.train.indices.map((i) => i * 1.5));
  });

  it("refuses bytes whose hash is not the recorded one, and normalisation of text", () => {
    const dataset = jobDataset(messy);
    const tampered = { ...dataset, sha256: "0".repeat(64) };
    const e = datasetErrorOf(() => prepareData(tampered, dataSection()));
    expect(e.code).toBe("HASH_MISMATCH");
    const text = datasetErrorOf(() => prepareData(builtinDataset("sentences"), dataSection({ normalization: "standard" })));
    expect(text.message).toBe(
      "normalization 'standard' applies to numeric features; a text dataset is tokenised instead, so set normalization to 'none'",
    );
  });

  it("reports a label column the config names but the file lacks", () => {
    const schema: DatasetSchema = jobDataset(messy).schema;
    const e = datasetErrorOf(() => prepareData({ ...jobDataset(messy), schema }, dataSection({ labelColumn: "species" })));
    expect(e.message).toBe("the file has no column named 'species'; columns are: a, b, label");
  });
});
