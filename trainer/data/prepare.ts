/**
 * prepareData: raw dataset bytes + the config's data section → model-ready tensors and the lineage facts
 * (dataset version, split manifest) the server records.
 *
 * Pipeline: verify bytes hash → parse → validate for the task → clean → encode labels → split → fit
 * normalisation (or the text vocabulary) on TRAIN ONLY → Float32Array tensors per partition.
 *
 * Invariants:
 * - Deterministic: same bytes + data section → same version sha256, split sha256 and tensor values.
 * - version.sha256 = sha256Canonical({columns, rows}) of the cleaned table; split.sha256 = sha256Canonical(manifest).
 * - Partition indices refer to rows of the cleaned table, sorted ascending; x is row-major, one sample after another.
 * - Classes are sorted (numerically when the label column is numeric); y is one-hot for classification.
 * - A stratified split requested for regression is done as a random split; the manifest's strategy says "random".
 */
import type { TrainingConfig } from "@/contracts/training-config";
import type { DatasetSchema, PartitionName, PartitionTensors, PreparedData, SplitManifest, Table, TrainJob } from "@/trainer/types";
import { sha256Canonical, sha256Hex } from "@/contracts/canonical";
import { applyCleaning } from "./clean";
import { parseCsv } from "./csv";
import { tableSha256 } from "./digest";
import { DatasetError } from "./errors";
import { fitNormalization, normalizeRow } from "./normalize";
import { columnIndex, featureColumnNames, validateForTask } from "./schema";
import { describePartition, makeSplit, PARTITIONS, type SplitIndices } from "./split";
import { buildVocabulary, chooseSequenceLength, encodeTokens, tokenize } from "./text";

type DataSection = TrainingConfig["data"];

/** Class names in label-index order: numeric order for a numeric label column, code-point order otherwise. */
export function sortedClasses(values: readonly (string | number)[], numeric: boolean): string[] {
  const unique = [...new Set(values.map(String))];
  return numeric ? unique.sort((a, b) => Number(a) - Number(b)) : unique.sort();
}

function missingValueError(column: string, sourceRow: number): DatasetError {
  return new DatasetError("MISSING_VALUE", `column '${column}' row ${sourceRow} has no value; add a dropMissing or impute cleaning step`, {
    row: sourceRow,
    column,
  });
}

type Features = {
  featureShape: number[];
  rowsFor: (indices: number[]) => Float32Array;
  normalization: SplitManifest["normalization"];
  vocabulary?: SplitManifest["vocabulary"];
  vocabularySize?: number;
};

/** Numeric features (tabular, image): a float matrix, normalised with stats fitted on the train rows. */
function numericFeatures(
  table: Table,
  schema: DatasetSchema,
  sourceRows: number[],
  split: SplitIndices,
  method: DataSection["normalization"],
): Features {
  const names = featureColumnNames(table, schema);
  const cols = names.map((n) => columnIndex(table, n));
  const matrix = table.rows.map((row, r) =>
    cols.map((c, k) => {
      const v = row[c];
      if (v === null || v === undefined) throw missingValueError(names[k]!, sourceRows[r]!);
      return typeof v === "number" ? v : Number(v);
    }),
  );
  const stats = fitNormalization(
    method,
    names,
    split.train.map((i) => matrix[i]!),
  );
  const featureShape = schema.kind === "image" && schema.imageShape ? [...schema.imageShape] : [names.length];
  return {
    featureShape,
    normalization: { method, stats },
    rowsFor: (indices) => {
      const x = new Float32Array(indices.length * names.length);
      indices.forEach((i, k) => x.set(normalizeRow(names, matrix[i]!, stats), k * names.length));
      return x;
    },
  };
}

/** Text features: token ids with a vocabulary and sequence length taken from the train rows. */
function textFeatures(
  table: Table,
  schema: DatasetSchema,
  sourceRows: number[],
  split: SplitIndices,
  method: DataSection["normalization"],
): Features {
  if (method !== "none") {
    throw new DatasetError(
      "BAD_NORMALIZATION",
      `normalization '${method}' applies to numeric features; a text dataset is tokenised instead, so set normalization to 'none'`,
    );
  }
  const textColumn = schema.textColumn ?? featureColumnNames(table, schema)[0]!;
  const c = columnIndex(table, textColumn);
  const tokens = table.rows.map((row, r) => {
    const v = row[c];
    if (v === null || v === undefined) throw missingValueError(textColumn, sourceRows[r]!);
    return tokenize(String(v));
  });
  const trainTokens = split.train.map((i) => tokens[i]!);
  const vocabulary = buildVocabulary(trainTokens);
  const sequenceLength = chooseSequenceLength(trainTokens);
  return {
    featureShape: [sequenceLength],
    normalization: { method: "none", stats: {} },
    vocabulary: { size: vocabulary.size, sequenceLength, sha256: vocabulary.sha256 },
    vocabularySize: vocabulary.size,
    rowsFor: (indices) => {
      const x = new Float32Array(indices.length * sequenceLength);
      indices.forEach((i, k) => x.set(encodeTokens(tokens[i]!, vocabulary, sequenceLength), k * sequenceLength));
      return x;
    },
  };
}

export function prepareData(dataset: TrainJob["dataset"], data: DataSection): PreparedData {
  const actualSha = sha256Hex(dataset.bytes);
  if (actualSha !== dataset.sha256) {
    throw new DatasetError(
      "HASH_MISMATCH",
      `the dataset bytes hash to ${actualSha}, not the recorded ${dataset.sha256}; the stored file has changed`,
    );
  }
  // Size limits guard uploads; a dataset already accepted must stay trainable, so no limit here.
  const parsed = parseCsv(dataset.bytes, { maxBytes: Number.POSITIVE_INFINITY });
  const schema: DatasetSchema = { ...dataset.schema, labelColumn: data.labelColumn ?? dataset.schema.labelColumn };
  validateForTask(parsed, schema, data.task);

  const { table, report, sourceRows } = applyCleaning(parsed, data.cleaning, schema);
  const versionSha = tableSha256(table); // = sha256Canonical({ columns, rows }), computed faster

  const labelCol = columnIndex(table, schema.labelColumn);
  const labelValues = table.rows.map((row) => row[labelCol] as string | number);
  const classification = data.task === "classification";
  const classes = classification ? sortedClasses(labelValues, table.columns[labelCol]!.type === "number") : null;
  const labels = classification ? labelValues.map(String) : null;

  const strategy = classification ? data.split.strategy : "random";
  const split = makeSplit(table.rows.length, labels, { ...data.split, strategy });
  const features = (schema.kind === "text" ? textFeatures : numericFeatures)(table, schema, sourceRows, split, data.normalization);

  const manifest: SplitManifest = {
    strategy,
    seed: data.split.seed,
    ratios: { train: data.split.train, validation: data.split.validation, test: data.split.test },
    partitions: {
      train: describePartition(split.train, labels),
      validation: describePartition(split.validation, labels),
      test: describePartition(split.test, labels),
    },
    normalization: features.normalization,
    labelEncoding: classes,
  };
  if (features.vocabulary) manifest.vocabulary = features.vocabulary;

  const classIndex = new Map((classes ?? []).map((c, i) => [c, i]));
  const targetsFor = (indices: number[]): Float32Array => {
    if (!classes) return Float32Array.from(indices, (i) => Number(labelValues[i]));
    const y = new Float32Array(indices.length * classes.length);
    indices.forEach((i, k) => (y[k * classes.length + classIndex.get(String(labelValues[i]))!] = 1));
    return y;
  };
  const partitions = Object.fromEntries(
    PARTITIONS.map((p): [PartitionName, PartitionTensors] => [
      p,
      { x: features.rowsFor(split[p]), y: targetsFor(split[p]), indices: split[p], count: split[p].length },
    ]),
  ) as Record<PartitionName, PartitionTensors>;

  const prepared: PreparedData = {
    datasetSha256: dataset.sha256,
    task: data.task,
    featureShape: features.featureShape,
    classes,
    version: { recipe: data.cleaning, report, sha256: versionSha, rowCount: table.rows.length },
    split: { spec: data.split, manifest, sha256: sha256Canonical(manifest) },
    partitions,
  };
  if (features.vocabularySize !== undefined) prepared.vocabularySize = features.vocabularySize;
  return prepared;
}
